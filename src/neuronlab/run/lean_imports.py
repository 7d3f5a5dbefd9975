"""Start Lightning without the optional packages torchmetrics imports only because they are installed.

``import lightning.pytorch`` imports torchmetrics (its version check runs ``import torchmetrics``), and
torchmetrics' ``__init__`` then imports scipy.signal, torchvision and matplotlib whenever they are
installed, whether or not a metric that needs them is used: about 1.5 s of a command's start on a
2-core machine (torchmetrics issue #3457; open as of torchmetrics 1.9.0). neuronlab's commands use none
of torchmetrics' audio, image-quality or plotting code, so while torchmetrics itself is being imported,
its availability checks are told that these three packages are not installed.

Nothing is blocked or patched for good: once torchmetrics is imported the checks answer truthfully again,
an import that does happen works as usual, and neuronlab's own uses of torchvision (downloads,
augmentation) are unaffected. In such a process torchmetrics' ``.plot()`` and its metrics that need
these packages raise torchmetrics' own "requires ..." error. Commands only (``neuronlab-train`` and
friends call :func:`install`): ``import neuronlab`` in a notebook gets torchmetrics whole.
``NEURONLAB_LEAN_IMPORTS=0`` turns it off. Imports nothing heavy.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError
from types import ModuleType
from typing import Any

OPTIONAL = frozenset({"scipy", "torchvision", "matplotlib"})
"""What torchmetrics imports eagerly and neuronlab's commands never need from it."""

_hidden: frozenset[str] = frozenset()  # non-empty only while torchmetrics' own modules run


def install() -> None:
    """Import torchmetrics lean when it is first imported in this process (idempotent; nothing if it
    already is, or with ``NEURONLAB_LEAN_IMPORTS=0``)."""
    if os.environ.get("NEURONLAB_LEAN_IMPORTS") == "0" or "torchmetrics" in sys.modules:
        return
    if not any(isinstance(finder, _LeanTorchmetrics) for finder in sys.meta_path):
        sys.meta_path.insert(0, _LeanTorchmetrics())


class _LeanTorchmetrics(importlib.abc.MetaPathFinder):
    """Finds torchmetrics as Python would, and runs its package ``__init__`` inside :func:`_absent`."""

    def find_spec(
        self, name: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "torchmetrics":
            return None
        sys.meta_path.remove(self)  # once: the real finders answer from here on
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _LeanLoader(spec.loader)
        return spec


class _LeanLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # the package looks as usual afterwards
        with _absent(OPTIONAL):
            self.loader.exec_module(module)


@contextmanager
def _absent(names: frozenset[str]) -> Iterator[None]:
    """lightning_utilities' availability checks (which torchmetrics uses) answer "not installed" for
    ``names`` inside this block. Its ``module_available`` cache is bypassed, not filled with false answers."""
    global _hidden
    from lightning_utilities.core import imports as checks

    saved = {name: getattr(checks, name) for name in ("_version", "package_available", "module_available")}

    def _version(package: str) -> str:
        if package in _hidden:
            raise PackageNotFoundError(package)
        return saved["_version"](package)

    def package_available(package: str) -> bool:
        return package not in _hidden and saved["package_available"](package)

    def module_available(module_path: str) -> bool:
        return module_path.split(".")[0] not in _hidden and saved["module_available"](module_path)

    # torchmetrics binds package_available by name: these answer truthfully once _hidden is empty again
    checks._version, checks.package_available, checks.module_available = (
        _version,
        package_available,
        module_available,
    )
    _hidden = names
    try:
        yield
    finally:
        _hidden = frozenset()
        for name, value in saved.items():
            setattr(checks, name, value)
