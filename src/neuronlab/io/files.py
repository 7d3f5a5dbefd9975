"""One way to write a file that readers, resumed runs and a full disk never see half written.

Every writer (checkpoints, ``result.json``, sweep summaries, predictions, Optuna's results) goes through
:func:`atomic_file`: a temporary file beside the target (same folder, so the rename never copies across
file systems), flushed and synced, then renamed over the name in one step. A failure at any point
leaves the previous file byte for byte and no temporary file behind. Imports nothing heavy: entry
points' ``--help`` stays fast.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def temporary_path(path: Path) -> Path:
    """The temporary name beside ``path``: hidden, and one per process (parallel sweep jobs)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_file(path: Path | str, mode: str = "wb", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Yield a temporary file to write (``torch.save``, ``savefig``, ``csv.writer`` take it); on a clean
    exit, sync it and rename it over ``path``. On any error the temporary file is removed and ``path``
    keeps what it held; the error propagates for the caller to word."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        with open(tmp, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path | str, data: bytes | bytearray | memoryview | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` whole or not at all."""
    with atomic_file(path, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


def atomic_write_json(path: Path | str, data: Any) -> None:
    """``data`` as indented JSON (values JSON lacks as their ``str``), whole or not at all."""
    atomic_write(path, json.dumps(data, indent=2, default=str) + "\n")
