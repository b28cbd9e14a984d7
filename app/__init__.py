"""Rigdeck's Qt-free core: library, fit, engines, runtime, telemetry, chat, roles, settings.

Nothing under `app` imports PySide6, pyqtgraph, superqt or `ui` (an import-linter
contract in pyproject.toml checks it), so the CLI and the tests run without a screen.
"""

__version__ = "0.1.0"
