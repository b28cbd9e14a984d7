"""Pytest plugin: run with Qt made unimportable, to prove the core works without it.

`pytest -p tests.qt_absent tests/unit/app` fails any test whose code imports PySide6,
shiboken6, pyqtgraph, superqt or the `ui` package.
"""

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

BLOCKED = ("PySide6", "shiboken6", "pyqtgraph", "superqt", "ui")


class _QtBlocker(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".", maxsplit=1)[0] in BLOCKED:
            raise ModuleNotFoundError(f"{fullname} is blocked: the core must run without Qt")
        return None


def pytest_configure() -> None:
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
    if loaded:
        raise RuntimeError(f"Qt was imported before the blocker was installed: {loaded}")
    sys.meta_path.insert(0, _QtBlocker())
