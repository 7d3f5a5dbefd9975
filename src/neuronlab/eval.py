"""``neuronlab-eval ckpt_path=...``: re-test a checkpoint and print/log the same test metrics as training.

The data defaults to the DataModule the checkpoint was trained with (its plain values are stored in the
checkpoint); ``data=...`` tests on other data, ``data_dir=...`` points at another copy of the same data.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from neuronlab.errors import run_command
from neuronlab.run.folder import write_result
from neuronlab.run.preflight import checkpoint_command


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test the checkpoint ``cfg.ckpt_path``; returns ``test/loss`` and ``test/acc``."""
    import lightning.pytorch as L
    from hydra.utils import instantiate

    from neuronlab.io.checkpoint import datamodule_from_checkpoint, load_classifier, resolve_checkpoint
    from neuronlab.run import ddp, report
    from neuronlab.run.build import build_list, build_trainer
    from neuronlab.run.validate import validate

    validate(cfg)  # the same checks as training: trainer.*, data.*, seed
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    ddp.install("neuronlab.eval")
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    ckpt_path = resolve_checkpoint(cfg.ckpt_path)
    task, checkpoint = load_classifier(ckpt_path)
    if cfg.get("data"):
        datamodule = instantiate(cfg.data)
    else:  # the task checks the net against the data as the test starts
        datamodule, _ = datamodule_from_checkpoint(checkpoint, ckpt_path, cfg.get("data_dir"))
    loggers = build_list(cfg.get("logger"))
    trainer = build_trainer(cfg.trainer, logger=loggers, callbacks=build_list(cfg.get("callbacks")))
    trainer.test(task, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    report.finish(run_dir, str(ckpt_path), metrics, loggers)
    write_result(run_dir, status="completed", metrics=metrics, checkpoint=str(ckpt_path))
    return metrics


def run(cfg: DictConfig, raise_errors: bool = False) -> dict[str, float]:
    """One eval job, as :func:`neuronlab.train.run`: a failed one's ``result.json`` says why, too."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    return run_command(
        lambda: evaluate(cfg),
        lambda status, message: write_result(run_dir, status=status, error=message),
        raise_errors=raise_errors,
    )


def main() -> None:
    """Entry point of ``neuronlab-eval`` and ``python -m neuronlab.eval``."""
    checkpoint_command("eval", run)


if __name__ == "__main__":
    main()
