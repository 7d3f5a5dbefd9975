"""Loggers with neuronlab's changes: one TensorBoard event file per run, flushed with every checkpoint;
an MLflow run per run folder, continued on resume without duplicated steps."""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.logger import _convert_params, _flatten_dict
from lightning.pytorch import loggers
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from neuronlab.errors import NeuronlabError
from neuronlab.io.files import atomic_write
from neuronlab.io.read import UnreadableFile, read_text
from neuronlab.show import shown


class TensorBoardLogger(loggers.TensorBoardLogger):
    """Lightning's TensorBoard logger, but a stage ending only flushes, so ``test`` writes into ``fit``'s
    event file (:meth:`close` ends it), and every checkpoint flushes: a killed run's curves hold every
    epoch its checkpoint holds."""

    def resume_at(self, step: int) -> None:
        """Continue a run's curves at ``step``: events at or after it (from the killed run) are hidden."""
        self._kwargs["purge_step"] = step

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if self._experiment is not None:
            self._experiment.flush()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._experiment is not None:
            self._experiment.flush()
        self.save()

    @rank_zero_only
    def close(self) -> None:
        if self._experiment is not None:
            self._experiment.close()


RUN_ID_FILE = "mlflow_run_id"
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def read_run_id(run_dir: Path) -> str | None:
    """The MLflow run id a run folder keeps (``mlflow_run_id``), checked: the folder is untrusted input."""
    path = run_dir / RUN_ID_FILE
    if not path.exists() and not path.is_symlink():
        return None
    try:
        text = read_text(path, limit=1024).strip()
    except UnreadableFile:  # a link, a FIFO, not text...
        text = "<not a readable text file>"
    if not _RUN_ID.fullmatch(text):
        raise NeuronlabError(
            f"{path} does not hold an MLflow run id (expected 32 hex digits, found '{shown(text, 40)}'): "
            "delete the file to log this run to a new MLflow run"
        )
    return text


class MLFlowLogger(loggers.MLFlowLogger):
    """Lightning's MLflow logger for one neuronlab run: a SQLite store ``<root_dir>/mlflow.db`` unless a
    tracking URI is given, and one MLflow run per run folder (its id in ``mlflow_run_id``), continued
    on resume. MLflow's history cannot be edited, so a resume skips the steps the store holds already.
    Points are written every ``flush_secs`` (and when a stage ends): a SIGKILL loses at most those.
    """

    def __init__(
        self,
        run_dir: str,
        experiment_name: str,
        root_dir: str = "outputs",
        tracking_uri: str | None = None,
        flush_secs: float = 1.0,
    ) -> None:
        self.run_dir = Path(run_dir)
        if not tracking_uri:
            tracking_uri = f"sqlite:///{Path(root_dir).expanduser().resolve() / 'mlflow.db'}"
            Path(root_dir).expanduser().mkdir(parents=True, exist_ok=True)
        parent = self.run_dir.parent.name  # runs/<time> -> <time>; multiruns/<time>/<job> -> <time>/<job>
        run_name = self.run_dir.name if parent == "runs" else f"{parent}/{self.run_dir.name}"
        super().__init__(
            experiment_name=experiment_name,
            run_name=run_name,
            tracking_uri=tracking_uri,
            run_id=read_run_id(self.run_dir),
        )
        self._run_id = self._own_run(self._run_id)
        self._logged: dict[str, set[int]] = {}  # on resume: the steps the store holds, per metric
        self._flush_secs = flush_secs
        self._buffer: list[Any] = []  # points not yet written: one write per flush_secs, not per epoch
        self._flushed_at = time.monotonic()

    def _own_run(self, run_id: str | None) -> str | None:
        """The folder's MLflow run if the store has it and it was started for this folder; ``None`` for a
        copied or moved folder (it gets its own). Checked before anything is written."""
        from mlflow.exceptions import MlflowException

        if run_id is None:
            return None
        try:
            run = self._mlflow_client.get_run(run_id)
        except MlflowException:
            raise NeuronlabError(
                f"{self.run_dir / RUN_ID_FILE}: MLflow run {run_id} is not in {self._tracking_uri}; resume "
                "with the same paths.root_dir (or logger.mlflow.tracking_uri), or delete the file to start "
                "a new MLflow run"
            ) from None
        folder = run.data.tags.get("neuronlab.run_dir")
        return run_id if folder and Path(folder).resolve() == self.run_dir.resolve() else None

    def ui_command(self) -> str:
        return f"mlflow ui --backend-store-uri {shlex.quote(self._tracking_uri)}"

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The client, once the run exists: created (its id saved) or, on resume, found again."""
        if self._initialized:
            return self._mlflow_client
        client = self._mlflow_client
        if self._run_id is not None:  # checked by _own_run: in the store, this folder's
            run = client.get_run(self._run_id)
            self._experiment_id = run.info.experiment_id
            client.update_run(self._run_id, status="RUNNING")
            history = client.get_metric_history
            self._logged = {k: {m.step for m in history(self._run_id, k)} for k in run.data.metrics}
        else:
            self._experiment_id = self._experiment_for(client)
            tags = {"neuronlab.run_dir": str(self.run_dir.resolve())}  # whose run it is (_own_run)
            run = client.create_run(self._experiment_id, run_name=self._run_name, tags=tags)
            self._run_id = run.info.run_id
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.run_dir / RUN_ID_FILE, self._run_id + "\n")
        self._initialized = True
        return client

    def _experiment_for(self, client: Any) -> str:
        from mlflow.exceptions import MlflowException

        found = client.get_experiment_by_name(self._experiment_name)
        if found is not None and found.lifecycle_stage != "deleted":
            return found.experiment_id
        try:
            return client.create_experiment(self._experiment_name)
        except MlflowException:  # a parallel sweep job created it first
            return client.get_experiment_by_name(self._experiment_name).experiment_id

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        """Log plain parameters; on resume, a changed value is a tag (MLflow params are fixed)."""
        params = _flatten_dict(_convert_params(params))
        existing = self.experiment.get_run(self.run_id).data.params
        changed = [f"{k}={v}" for k, v in params.items() if k in existing and existing[k] != str(v)[:6000]]
        super().log_hyperparams({k: v for k, v in params.items() if k not in existing})
        if changed:
            self.experiment.set_tag(self.run_id, "neuronlab.changed_on_resume", ", ".join(changed))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        stamp, step = int(time.time() * 1000), step or 0
        self.experiment  # noqa: B018 (creates the run; on resume, fills self._logged)
        self._buffer += [
            Metric(k, float(v), stamp, step)
            for k, v in metrics.items()
            if not isinstance(v, str) and step not in self._logged.get(k, ())
        ]
        if time.monotonic() - self._flushed_at >= self._flush_secs:
            self._flush()

    def _flush(self) -> None:
        """Write the buffered points: a SQLite write costs ~30 ms, more than a whole epoch of the gates."""
        for start in range(0, len(self._buffer), 1000):  # MLflow takes at most 1000 metrics a call
            self.experiment.log_batch(self.run_id, metrics=self._buffer[start : start + 1000])
        self._buffer = []
        self._flushed_at = time.monotonic()

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        best = getattr(checkpoint_callback, "best_model_path", "")
        if getattr(checkpoint_callback, "monitor", None) and best:  # the best checkpoint's path, as a tag
            self.experiment.set_tag(self.run_id, "best_checkpoint", best)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """A stage ending keeps the run open; a failure or a stop marks it. :meth:`close` finishes it."""
        if not self._initialized:
            return
        self._flush()  # also when stopped: a resume skips the steps already written
        if status != "success":
            self.experiment.set_terminated(self.run_id, "KILLED" if status == "finished" else "FAILED")

    @rank_zero_only
    def close(self) -> None:
        if self._initialized:
            self._flush()
            self.experiment.set_terminated(self.run_id, "FINISHED")
