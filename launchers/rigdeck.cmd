@echo off
rem Starts Rigdeck from a source checkout on Windows: creates .venv and installs Rigdeck and
rem its dependencies from PyPI on the first run (PySide6, pyqtgraph, docker, httpx, gguf, ...),
rem then opens the window. Arguments are passed to `rigdeck` (e.g. `scan`, `--help`).
rem Needs Python 3.11+ (the `py` launcher, or set PYTHON to a python.exe).
setlocal
set "ROOT=%~dp0.."
set "VENV=%ROOT%\.venv"
if not exist "%VENV%\Scripts\rigdeck.exe" (
    echo First run: installing Rigdeck into %VENV% ... 1>&2
    if defined PYTHON (
        "%PYTHON%" -m venv "%VENV%" || exit /b 1
    ) else (
        py -3 -m venv "%VENV%" || exit /b 1
    )
    "%VENV%\Scripts\python.exe" -m pip install -q --disable-pip-version-check --upgrade pip || exit /b 1
    "%VENV%\Scripts\python.exe" -m pip install -q --disable-pip-version-check -e "%ROOT%" || exit /b 1
)
"%VENV%\Scripts\rigdeck.exe" %*
exit /b %ERRORLEVEL%
