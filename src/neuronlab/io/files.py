"""One way to write a file that readers, resumed runs, a full disk and a planted link never see half written.

Every writer goes through :func:`atomic_file`: a temporary file beside the target, synced, then renamed
over the name. Its name is unpredictable and it is created with ``O_EXCL | O_NOFOLLOW`` (a link planted in
a shared folder makes the create fail and another name is drawn); the rename replaces a link at the target
instead of following it. A failure keeps the previous file byte for byte; a SIGKILL's leftover is removed
by :func:`remove_stale_temporaries` when its folder is next locked. Imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TEMPORARY_SUFFIX = ".tmp"
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, empty, hidden file beside ``path`` that nothing else can have named beforehand."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}{TEMPORARY_SUFFIX}")
        try:
            return os.open(tmp, _FLAGS, 0o666), tmp
        except FileExistsError:  # a planted name (or a link): draw another
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


@contextlib.contextmanager
def atomic_file(path: Path | str, mode: str = "wb", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Yield a temporary file to write (``torch.save``, ``savefig``, ``csv.writer`` take it); on a clean
    exit, sync it and rename it over ``path``. On any error the temporary file is removed and ``path``
    keeps what it held; the error propagates for the caller to word."""
    path = Path(path)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
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


def open_lock_file(path: Path | str) -> IO[str]:
    """Open (create) a lock file for ``flock`` without ever following a link planted at its name."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    return os.fdopen(fd, "r+")


def remove_stale_temporaries(folder: Path | str) -> list[Path]:
    """Remove the temporary files (``.<name>.<random>.tmp``) that a killed writer left in ``folder``.

    Call it only while holding the folder's lock (no live writer there then). A link with such a name
    is removed itself, never followed. Returns what was removed.
    """
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    removed = []
    for entry in entries:
        if (
            entry.name.startswith(".")
            and entry.name.endswith(TEMPORARY_SUFFIX)
            and not entry.is_dir(follow_symlinks=False)
        ):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed
