"""Check a composed config before anything is built: a bad value names its key, the value and what is
allowed, instead of failing deep inside Lightning minutes later."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from neuronlab.config import is_int, is_number
from neuronlab.data.checks import check_data_args
from neuronlab.errors import ConfigError
from neuronlab.models.checks import ACTIVATIONS, check_net_args

__all__ = ["ACTIVATIONS", "EXPORT_RULES", "PRECISIONS", "RULES", "validate"]

_MISSING = object()
# torch-free copies, so that a bad value is reported before torch loads (tests/test_train.py compares them)
PRECISIONS = ("64", "32", "16", "transformer-engine", "transformer-engine-float16", "16-true", "16-mixed")
PRECISIONS += ("bf16-true", "bf16-mixed", "32-true", "64-true", "bf16")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


def _is_number(v: Any) -> bool:
    """A finite int or float (``nan``/``inf`` parse as floats but are never a sensible setting)."""
    return is_number(v) and math.isfinite(v)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_name(v: Any) -> bool:
    return v is None or (isinstance(v, str) and bool(v))


def _devices(v: Any) -> bool:
    if is_int(v):
        return v > 0 or v == -1
    if isinstance(v, str):
        return bool(re.fullmatch(r"auto|-1|\d+|(\d+,)+\d*", v))
    return isinstance(v, list) and bool(v) and all(is_int(d) and d >= 0 for d in v)


METRICS = ("val/acc_best", "val/acc", "val/loss", "train/acc", "train/loss", "test/acc", "test/loss")

# key, check, what is allowed: the keys no constructor of ours checks (the trainer, the callbacks, torch's
# optimizers and schedulers, the run itself); the net's and the data's own arguments are checked by their
# owners' torch-free functions, called here and by the constructors. data.val_size >= 1 is training's rule.
Rule = tuple[str, Callable[[Any], bool], str]
RULES: list[Rule] = [
    ("seed", lambda v: v is None or (is_int(v) and v >= 0), "an integer >= 0 or null"),
    ("test", _is_bool, "true or false"),
    ("ckpt_path", _is_name, "a .ckpt file, a run folder or null"),
    ("task_name", lambda v: isinstance(v, str) and bool(v) and "/" not in v, "a folder name"),
    ("optimizer.lr", lambda v: _is_number(v) and v > 0, "a number > 0"),
    ("optimizer.weight_decay", lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    ("optimizer.momentum", lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    (
        "data.val_size",
        lambda v: is_int(v) and v >= 1,
        "an integer >= 1 (the validation images pick the best checkpoint, stop early and rank sweeps)",
    ),
    ("scheduler.step_size", lambda v: is_int(v) and v > 0, "an integer > 0"),
    ("scheduler.gamma", lambda v: _is_number(v) and v > 0, "a number > 0"),
    ("scheduler.T_max", lambda v: is_int(v) and v > 0, "an integer > 0 (the epochs of one cosine decay)"),
    ("scheduler.eta_min", lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    ("scheduler.factor", lambda v: _is_number(v) and 0 < v < 1, "a number in (0, 1)"),
    ("scheduler.patience", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    ("scheduler.mode", lambda v: v in ("min", "max"), "min or max"),
    ("trainer.max_epochs", lambda v: is_int(v) and (v > 0 or v == -1), "an integer > 0 (or -1: no limit)"),
    ("trainer.precision", lambda v: v is None or str(v) in PRECISIONS, "one of " + ", ".join(PRECISIONS)),
    ("trainer.accelerator", lambda v: v is None or v in ACCELERATORS, "one of " + ", ".join(ACCELERATORS)),
    ("trainer.min_epochs", lambda v: v is None or (is_int(v) and v >= 0), "an integer >= 0"),
    ("trainer.devices", _devices, "an integer > 0, -1 (all), 'auto' or a list of device ids such as [0,1]"),
    ("trainer.num_nodes", lambda v: is_int(v) and v > 0, "an integer > 0"),
    ("trainer.check_val_every_n_epoch", lambda v: is_int(v) and v > 0, "an integer > 0"),
    ("trainer.log_every_n_steps", lambda v: is_int(v) and v > 0, "an integer > 0"),
    ("trainer.num_sanity_val_steps", lambda v: is_int(v) and v >= -1, "an integer >= 0 (or -1: all)"),
    ("trainer.deterministic", lambda v: _is_bool(v) or v == "warn", "true, false or warn"),
    ("trainer.fast_dev_run", lambda v: isinstance(v, int) and v >= 0, "true, false or a number of batches"),
    ("trainer.enable_model_summary", _is_bool, "true or false"),
    ("trainer.sync_batchnorm", _is_bool, "true or false"),
    ("trainer.use_distributed_sampler", _is_bool, "true or false"),
    ("callbacks.figures.num_images", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    ("callbacks.figures.graph", _is_bool, "true or false"),
    ("callbacks.progress_bar.refresh_rate", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    ("callbacks.early_stopping.patience", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    ("callbacks.early_stopping.stopping_threshold", lambda v: v is None or _is_number(v), "a number or null"),
    ("callbacks.early_stopping.min_delta", lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    ("callbacks.early_stopping.monitor", lambda v: v in METRICS[:5], ", ".join(METRICS[:5])),
    ("callbacks.model_checkpoint.monitor", lambda v: v in METRICS[:5], ", ".join(METRICS[:5])),
    ("callbacks.model_checkpoint.mode", lambda v: v in ("min", "max"), "min or max"),
    ("optimized_metric", lambda v: v is None or v in METRICS, ", ".join(METRICS) + " or null"),
]

# neuronlab-export's own keys
EXPORT_RULES: list[Rule] = [
    ("tolerance", _is_number, "a number, e.g. 1e-5"),
    ("batch_size", lambda v: is_int(v) and 0 < v <= 10_000, "an integer in 1..10000"),
    ("output", _is_name, "a file name or null"),
    ("data_dir", _is_name, "a folder or null"),
]


def validate(cfg: DictConfig, rules: list[Rule] | None = None) -> None:
    """Raise :class:`ConfigError` naming the first bad key, its value and what is allowed."""
    for key, ok, allowed in RULES if rules is None else rules:
        value = OmegaConf.select(cfg, key, default=_MISSING)
        if value is _MISSING:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not ok(value):
            raise ConfigError(f"{key}={value!r} is not allowed: expected {allowed}")
    if rules is None:
        for section, check in (("model", check_net_args), ("data", check_data_args)):
            if OmegaConf.is_dict(cfg.get(section)):  # eval without data=...: the checkpoint's data
                values = OmegaConf.to_container(cfg[section], resolve=True, throw_on_missing=True)
                check(**{str(k): v for k, v in values.items() if k != "_target_"})
        _validate_together(cfg)


def _validate_together(cfg: DictConfig) -> None:
    """Checks that involve several keys or the machine: a GPU, the epochs, what is logged."""
    trainer = cfg.get("trainer") or {}
    accelerator = trainer.get("accelerator")
    if accelerator in ("gpu", "cuda"):
        import torch  # only for a GPU setting: the one check that asks the machine

        gpu = torch.cuda.is_available() or (accelerator == "gpu" and torch.backends.mps.is_available())
        if not gpu:
            raise ConfigError(
                f"trainer.accelerator={accelerator} needs a GPU, but torch sees none "
                f"(torch {torch.__version__}, CUDA available: no): use trainer=cpu or trainer=default"
            )
    low, high = trainer.get("min_epochs"), trainer.get("max_epochs")
    if isinstance(low, int) and isinstance(high, int) and high != -1 and low > high:
        raise ConfigError(
            f"trainer.min_epochs={low} is more than trainer.max_epochs={high}: lower one or raise the other"
        )
    metric = cfg.get("optimized_metric")
    if metric and metric.startswith("test/") and not cfg.get("test", True):
        raise ConfigError(
            f"optimized_metric={metric} needs test=true (it is logged by the test after fitting)"
        )
