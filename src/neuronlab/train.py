"""``neuronlab-train``: compose the config -> build the parts -> fit -> test the best checkpoint -> report.

Everything a run does is decided by ``conf/``; this file holds no training logic of its own.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from neuronlab.paths import CONF_DIR

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit and test one configuration; returns the final metrics (``train/*``, ``val/*``, ``test/*``)."""
    import lightning.pytorch as L
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from neuronlab import ddp, report
    from neuronlab.build import build_list, build_task
    from neuronlab.checkpoint import resolve_checkpoint
    from neuronlab.validate import validate

    validate(cfg)
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    ddp.install("neuronlab.train")
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    data_name = hydra_cfg.runtime.choices.get("data", "?")
    task = build_task(cfg, datamodule, data_name)
    ckpt_path = str(resolve_checkpoint(cfg.ckpt_path)) if cfg.get("ckpt_path") else None
    loggers = build_list(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=build_list(cfg.get("callbacks")), logger=loggers)

    trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    metrics = _scalars(trainer.callback_metrics)
    if cfg.get("test", True):
        trainer.test(task, datamodule=datamodule, ckpt_path=best or None, verbose=False, weights_only=True)
        metrics.update(_scalars(trainer.callback_metrics))
    report.log_hparams(loggers, report.hparams_of(cfg, dict(hydra_cfg.runtime.choices)), metrics)
    for logger in loggers:
        getattr(logger, "close", lambda: None)()
    report.print_summary(run_dir, best, metrics, has_tensorboard=(run_dir / "tensorboard").is_dir())
    metrics["epochs"] = float(trainer.current_epoch)
    return metrics


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


def run(cfg: DictConfig) -> float | None:
    """Train, record the outcome in ``result.json`` either way, and return ``optimized_metric``."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from neuronlab import ddp, report
    from neuronlab.errors import exit_on_user_error

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    start = time.time()
    try:
        # in a sweep, the sweeper records a failed job and goes on with the others
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        with ddp.job_scope():
            metrics = train(cfg) if multirun else exit_on_user_error(lambda: train(cfg))
    except BaseException as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        if not isinstance(err, SystemExit):
            first = f"{type(err).__name__}: {first}"
        report.write_result(run_dir, status="failed", error=first, wall_time=time.time() - start)
        raise
    report.write_result(
        run_dir,
        status="completed",
        metrics=metrics,
        wall_time=time.time() - start,
        best_checkpoint=_best_checkpoint(run_dir),
    )
    metric = cfg.get("optimized_metric")
    if metric:
        if metric not in metrics:
            raise KeyError(
                f"optimized_metric={metric!r} was not logged; logged: {', '.join(sorted(metrics))}"
            )
        return metrics[metric]
    return None


def _best_checkpoint(run_dir: Path) -> str:
    best = run_dir / "checkpoints" / "best.ckpt"
    return str(best) if best.is_file() else ""


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Entry point of ``neuronlab-train`` and ``python -m neuronlab.train``."""
    return run(cfg)


if __name__ == "__main__":
    main()
