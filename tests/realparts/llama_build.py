"""Builds `llama-server` from the llama.cpp sources inside PyPI's llama-cpp-python sdist.

The build (about 6 minutes on 2 cores) lands in the cache folder; later runs reuse it.
Run as `python -m tests.realparts.llama_build` to build ahead of the tests.
"""

import fcntl
import logging
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.realparts import PartMissing
from tests.realparts.cache import cache_dir

log = logging.getLogger(__name__)

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
"""The sdist pinned here vendors llama.cpp commit 0c1e570, as in shared/data's H100 runs."""


def _build_root() -> Path:
    return cache_dir() / f"llama.cpp-{LLAMA_CPP_PYTHON_VERSION}"


def server_binary() -> Path:
    """Where the built llama-server lies (it may not exist yet)."""
    return _build_root() / "build" / "bin" / "llama-server"


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    log.info("running %s", " ".join(cmd))
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-4000:]
        raise PartMissing(f"{cmd[0]} failed ({done.returncode}):\n{tail}")


def _sources(root: Path) -> Path:
    src = root / "src"
    marker = src / "CMakeLists.txt"
    if marker.exists():
        return src
    download = root / "sdist"
    download.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
          f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(download)])
    archive = next(download.glob("llama_cpp_python-*.tar.gz"))
    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp/"
    tmp = root / "src.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        for member in members:
            member.name = member.name[len(prefix):]
        tar.extractall(tmp, members=[m for m in members if m.name], filter="data")
    tmp.rename(src)
    return src


def ensure_llama_server() -> Path:
    """Return the llama-server binary, building it first if the cache lacks it.

    Raises:
        PartMissing: the download or the build failed (the tail of its output is kept).
    """
    binary = server_binary()
    if binary.exists():
        return binary
    if shutil.which("cmake") is None:
        raise PartMissing("cmake is not installed: apt-get install cmake g++")
    root = _build_root()
    root.mkdir(parents=True, exist_ok=True)
    # Two test sessions (or `prepare` and a session) building into one folder at once
    # would write the same object files; the second waits for the first and reuses it.
    with (root / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return binary
        return _build(root, binary)


def _build(root: Path, binary: Path) -> Path:
    src = _sources(root)
    build = root / "build"
    _run(["cmake", "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
          "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=OFF", "-DLLAMA_CURL=OFF",
          "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
          "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON"])
    jobs = str(os.cpu_count() or 2)
    _run(["cmake", "--build", str(build), "--target", "llama-server", "-j", jobs])
    if not binary.exists():
        raise PartMissing(f"the build finished but {binary} is missing")
    return binary


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(ensure_llama_server())
