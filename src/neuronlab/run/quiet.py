"""What a run does not print: the one place that silences libraries' noise, called by every entry point.

Silenced: Lightning's advertising tips ("💡 Tip: ... litlogger"), deprecation warnings raised inside
libraries (torch, Lightning, Hydra, MLflow: nothing a user of neuronlab can change), the "number of
training batches is smaller than the logging interval" warning (neuronlab logs once per epoch, so that
interval never matters), "checkpoint directory exists" on a resume (it is the run's own folder), and
MLflow's and Alembic's database set-up chatter. Every other warning stays,
and deprecations raised by neuronlab's own code or by the user's (``__main__``) stay visible.
Imports nothing heavy: it only installs filters by name.

Said once: ``import lightning`` always gives the ``lightning`` logger a console handler of its own
(stderr, ``INFO: message``), and Lightning's loggers propagate to the root logger when it has handlers,
as Hydra's ``job_logging`` gives it: every Lightning message would print twice. Hydra's console handler
therefore leaves Lightning's records to Lightning (:class:`LightningPrintsItsOwn`, named in
``conf/hydra/default.yaml``) and prints the rest in Lightning's format on the same stream; the run's log
file still gets everything.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_TIP_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
_CHATTY_LOGGERS = ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent")
_NOT_OURS = r"(?!neuronlab|__main__)"  # a warning's module is the code that called the warning's source


class _NoTips(logging.Filter):
    """Drops Lightning's "💡 Tip: ..." advertisements."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


class LightningPrintsItsOwn(logging.Filter):
    """For the root logger's console handler: drops the records of Lightning's loggers, which the
    handler ``import lightning`` puts on the ``lightning`` logger prints already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("lightning.")


def install() -> None:
    """Silence the noise listed above for this process (idempotent)."""
    for name in _TIP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTips) for f in logger.filters):
            logger.addFilter(_NoTips())
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than")
    # a resumed run writes into its own checkpoints/ folder: expected, not a risk
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=_NOT_OURS)


@contextmanager
def scope() -> Iterator[None]:
    """:func:`install` for the duration of a call (the notebook API): the warning filters come back as
    they were. (The tip filter stays: it only drops advertisements.)"""
    with warnings.catch_warnings():
        install()
        yield
