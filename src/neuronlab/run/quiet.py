"""The one place that silences libraries' noise, called by every entry point (imports nothing heavy).

Silenced: Lightning's "💡 Tip" adverts, deprecations raised inside libraries (nothing a user can change;
neuronlab's and ``__main__``'s stay), "training batches smaller than the logging interval" (neuronlab
logs per epoch), "checkpoint directory exists" (a resume's own folder), MLflow's and Alembic's database
chatter. Lightning's loggers print through their own console handler and also propagate to Hydra's:
:class:`LightningPrintsItsOwn` (``conf/hydra/default.yaml``) keeps each message to one print.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_TIP_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
_CHATTY_LOGGERS = ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent")
_NOT_OURS = r"(?!neuronlab|__main__)"  # a warning's module is the code that called the warning's source


def _no_tips(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("💡 Tip")


class LightningPrintsItsOwn(logging.Filter):
    """For the root logger's console handler: Lightning's own handler prints Lightning's records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("lightning.")


def install() -> None:
    """Silence the noise listed above for this process (idempotent)."""
    for name in _TIP_LOGGERS:
        logging.getLogger(name).addFilter(_no_tips)  # once: a filter already there is not added again
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than")
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=_NOT_OURS)


@contextmanager
def scope() -> Iterator[None]:
    """:func:`install` for one notebook call: the warning filters come back as they were (the tip
    filter stays: it only drops adverts)."""
    with warnings.catch_warnings():
        install()
        yield
