#!/usr/bin/env bash
# Starts Rigdeck from a source checkout: creates .venv and installs Rigdeck and its
# dependencies from PyPI on the first run (PySide6, pyqtgraph, docker, httpx, gguf, …),
# then opens the window. Arguments are passed to `rigdeck` (e.g. `scan`, `--help`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
if [ ! -x "$venv/bin/rigdeck" ]; then
    echo "First run: installing Rigdeck into $venv …" >&2
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root"
fi
exec "$venv/bin/rigdeck" "$@"
