"""Make Lightning's DDP launcher and Hydra agree on one run folder.

Lightning starts DDP workers by re-running the command line, which inside a ``-m`` sweep re-runs the
whole sweep. Workers here get exactly this job's overrides and output folder, and no Hydra output.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_original_cwd

from neuronlab.run.paths import hydra_quote


def worker_command(module: str, local_rank: int) -> tuple[Sequence[str], str]:
    """The command (and working directory) that starts DDP worker ``local_rank`` of the current job."""
    hydra_cfg = HydraConfig.get()
    command = [
        sys.executable,
        "-m",
        module,
        f"--config-name={hydra_cfg.job.config_name}",
        *hydra_cfg.overrides.task,
        f"hydra.run.dir={hydra_quote(hydra_cfg.runtime.output_dir)}",
        "hydra.output_subdir=null",
        f"hydra.job.name=ddp_rank_{local_rank}",
        "hydra/hydra_logging=none",
        "hydra/job_logging=none",
    ]
    return command, get_original_cwd()


def install(module: str) -> None:
    """Route Lightning's Hydra-aware worker command through :func:`worker_command` for ``module``."""
    from lightning.fabric.strategies.launchers import subprocess_script as fabric_launcher
    from lightning.pytorch.strategies.launchers import subprocess_script as pytorch_launcher

    for launcher in (fabric_launcher, pytorch_launcher):
        launcher._hydra_subprocess_cmd = lambda local_rank: worker_command(module, local_rank)


@contextmanager
def job_scope() -> Iterator[None]:
    """Leave no distributed state behind a job: the ``LOCAL_RANK``, ``WORLD_SIZE``... Lightning's
    launcher sets here would make a sweep's next job wait for workers of an outside launcher."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        dist = sys.modules.get("torch.distributed")  # not imported: nothing to tear down (a fast start)
        if dist is not None and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)
