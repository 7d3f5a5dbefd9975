"""The one reader of files that may come from someone else: run folders, sweep folders, saved configs.

A shared folder can hold anything under an expected name: a FIFO (an open would wait for ever), a link, a
device, a huge file, a 400-byte YAML alias bomb, a 100,000-deep nest that exhausts Python's recursion.
Each read here takes a regular file only, at most ``limit`` bytes, YAML without aliases, JSON and YAML to a
bounded depth, and words each refusal as one :class:`UnreadableFile` line. Imports nothing heavy.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from neuronlab.errors import NeuronlabError, first_line

MAX_BYTES = 4 * 1024 * 1024  # a run's records are kilobytes; checkpoints have their own reader
MAX_DEPTH = 100  # a neuronlab record nests five levels deep


class UnreadableFile(NeuronlabError):
    """A file of a run or sweep folder that is missing, not a regular file, too large or malformed."""


def read_bytes(path: Path | str, limit: int = MAX_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (never a link, FIFO or device), at most ``limit`` of them."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UnreadableFile(f"{path} cannot be read (not a regular file)")
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read(limit + 1)  # one byte more tells a file over the limit
        finally:
            os.close(fd)
    except OSError as err:
        why = "it is a symbolic link" if err.errno == errno.ELOOP else (err.strerror or str(err))
        raise UnreadableFile(f"{path} cannot be read ({why})") from None
    if len(data) > limit:
        raise UnreadableFile(f"{path} cannot be read (more than {limit} bytes)")
    return data


def read_text(path: Path | str, limit: int = MAX_BYTES) -> str:
    """:func:`read_bytes` as UTF-8 text."""
    try:
        return read_bytes(path, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableFile(f"{path} cannot be read (not UTF-8 text)") from None


# a JSON string (brackets inside it do not nest) or any other character that is not a bracket
_NOT_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[^\[\]{}]')


def _json_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings (counted before parsing: no recursion)."""
    brackets = _NOT_NESTING.sub("", text)
    return max(itertools.accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def read_json(path: Path | str, limit: int = MAX_BYTES) -> Any:
    """The JSON value in ``path``, read by :func:`read_text`, nested at most ``MAX_DEPTH`` deep."""
    text = read_text(path, limit)
    if _json_depth(text) > MAX_DEPTH:
        raise UnreadableFile(f"{path} cannot be read (nested more than {MAX_DEPTH} deep)")
    try:
        return json.loads(text)
    except ValueError as err:
        raise UnreadableFile(f"{path} cannot be read (not JSON: {err})") from None


def parse_yaml(text: str, source: Path | str = "<text>") -> Any:
    """YAML as ``yaml.safe_load`` reads it, but with no alias (``*name``) and at most ``MAX_DEPTH`` deep."""
    import yaml

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise yaml.YAMLError("aliases (*name) are not allowed")
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise yaml.YAMLError(f"nested more than {MAX_DEPTH} deep")
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    try:
        return yaml.load(text, Loader=Loader)
    except yaml.YAMLError as err:
        raise UnreadableFile(f"{source} cannot be read (not valid YAML: {first_line(err)})") from None


def read_yaml(path: Path | str) -> Any:
    """The YAML value in ``path``: :func:`read_text`, then :func:`parse_yaml`."""
    return parse_yaml(read_text(path), path)
