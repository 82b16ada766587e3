"""Module paths that Pulumi state written by an earlier release names, kept importable.

Each dynamic resource keeps in its state the provider that created it: the Python SDK pickles it
with dill into the `__provider` property (pulumi/dynamic/dynamic.py `serialize_provider`), and an
instance of a class from an importable module is pickled by reference, as that module's dotted
path and the class's name. The provider host unpickles the *old* state's provider to delete a
resource and to read it back on refresh (pulumi/dynamic/__main__.py `get_provider(props)` in Delete
and Read). A one-way step's state keeps the provider string it was created with for as long as the
step exists: its diff ignores `__provider` and Read hands the old string back, so nothing rewrites
it. A module that moves must therefore stay importable under its old path for good, or every stack
holding a step created before the move fails its next delete — a migration stranded mid-way.

`LEGACY_MODULES` maps each old dotted path to the module now in its place. The finder answers an
old path with the *same module object* (not a copy): a provider restored from old state is an
instance of the very class new state pickles, sharing its module's globals, and its class still
reports its real module, so state written from now on names the new paths. The finder comes last
on `sys.meta_path`, so it never shadows a module that exists. Nothing here is a file per old name:
no two modules share a name (tests/test_layers.py).

Installed on import; `components/__init__.py` imports it, since unpickling `components.gates`
imports the `components` package first. tests/test_upgrade_state.py holds every path that state
from an earlier release names (tests/fixtures/landed/) to resolve, and every alias here to be one.

It imports nothing of the project itself: a target is imported by name when its old path is asked for.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

# Old dotted path -> the module now in its place, with the release whose state names the old one.
LEGACY_MODULES: dict[str, str] = {
    # 78a35ac and before: the one-way steps' providers (_ScaleProvider, _DetachedProvider, ...).
    "components.gates": "components.gate_providers",
    # 78a35ac and before: _DriverCheckProvider.
    "components.driver_check": "components.driver_check_provider",
}


class _AliasLoader(importlib.abc.Loader):
    """Loads an old path as the module now in its place. One per lookup, so concurrent imports (the
    provider host serves from a thread pool) never share the spec it keeps."""

    def __init__(self, target: str):
        self.target = target
        self._own_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self._own_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # importlib set the module's __spec__ to the old path's (importlib._bootstrap
        # _init_module_attrs, which keeps __name__, __loader__ and __file__ once set): give back
        # its own, so the module still says where it lives.
        module.__spec__ = self._own_spec


class LegacyPathFinder(importlib.abc.MetaPathFinder):
    """Finds the old dotted paths of `LEGACY_MODULES`, and nothing else."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = LEGACY_MODULES.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new), origin=f"alias of {new}")


def install() -> None:
    """Puts the finder last on sys.meta_path, once."""
    if not any(isinstance(finder, LegacyPathFinder) for finder in sys.meta_path):
        sys.meta_path.append(LegacyPathFinder())


install()
