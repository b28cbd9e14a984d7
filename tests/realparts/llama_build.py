"""Builds `llama-server`, `llama-perplexity` and `llama-bench` from the llama.cpp sources
inside PyPI's llama-cpp-python sdist.

The build (about 6 minutes on 2 cores for the server; the two tools share its libraries
and add about a minute) lands in the cache folder; later runs reuse it, and a build tree
that lacks a tool builds only what that tool needs. Run as
`python -m tests.realparts.llama_build` to build ahead of the tests.
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


TARGETS = ("llama-server", "llama-perplexity", "llama-bench")
"""What the build makes: the server the backends run, and the two tools the Bench runs
beside it (perplexity on a text; llama-bench for the overhead benchmark), from the same
sources so their numbers describe the same engine."""


def server_binary() -> Path:
    """Where the built llama-server lies (it may not exist yet)."""
    return _build_root() / "build" / "bin" / "llama-server"


def tool_binary(name: str) -> Path:
    """Where one of TARGETS lies beside llama-server (it may not exist yet)."""
    return server_binary().with_name(name)


def _built() -> bool:
    return all(tool_binary(name).exists() for name in TARGETS)


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
    """Return the llama-server binary, building it (and the tools beside it) first if the
    cache lacks any of TARGETS.

    Raises:
        PartMissing: the download or the build failed (the tail of its output is kept).
    """
    binary = server_binary()
    if _built():
        return binary
    if shutil.which("cmake") is None:
        raise PartMissing("cmake is not installed: apt-get install cmake g++")
    root = _build_root()
    root.mkdir(parents=True, exist_ok=True)
    # Two test sessions (or `prepare` and a session) building into one folder at once
    # would write the same object files; the second waits for the first and reuses it.
    with (root / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _built():
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
    _run(["cmake", "--build", str(build), "--target", *TARGETS, "-j", jobs])
    missing = [name for name in TARGETS if not tool_binary(name).exists()]
    if missing:
        raise PartMissing(f"the build finished but {', '.join(missing)} is missing")
    return binary


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(ensure_llama_server())
