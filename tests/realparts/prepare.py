"""Prepare every real part ahead of pytest: `python -m tests.realparts.prepare`.

Builds llama-server (about 6-10 minutes on 2 cores the first time), finds or starts a
Docker engine, imports the backend image, installs docker compose where missing (Debian's
docker-compose), assembles the Gemma 3 270M GGUF and checks that a tiny model can be
written, printing each step and how long it took. Exits 1 with the reason when a part is
missing.

A private dockerd started here (at /run/rigdeck-test-docker.sock) is LEFT RUNNING so the
pytest session that follows reuses it instead of starting its own; that session will not
stop it, because it did not start it. Stop it with `python -m tests.realparts.prepare
--stop-engine` (it also stops by itself when the machine goes away).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tests.realparts import PartMissing
from tests.realparts.backend_image import ensure_backend_image
from tests.realparts.compose_cli import ensure_compose
from tests.realparts.docker_engine import find_or_start_engine, stop_private_engine
from tests.realparts.gemma import ensure_gemma_gguf
from tests.realparts.gguf_factory import TinyModelSpec, write_tiny_model
from tests.realparts.llama_build import ensure_llama_server
from tests.realparts.openai_npm import ensure_openai_npm

T = TypeVar("T")


def _step(title: str, make: Callable[[], T]) -> T:
    print(f"- {title} ...", flush=True)
    started = time.monotonic()
    result = make()
    print(f"  {result}  ({time.monotonic() - started:.1f} s)", flush=True)
    return result


def _tiny_models() -> str:
    with tempfile.TemporaryDirectory() as folder:
        for arch in ("qwen3", "qwen3moe"):
            write_tiny_model(Path(folder) / f"{arch}.gguf", TinyModelSpec(arch=arch))
    return "qwen3 and qwen3moe written"


def prepare() -> None:
    """Prepare all parts, raising PartMissing at the first that cannot be had."""
    binary = _step("llama-server build", ensure_llama_server)
    engine = _step("Docker engine", find_or_start_engine)
    how = "started here, left running" if engine.started_here else "already running"
    print(f"  ({how})", flush=True)
    _step("backend image", lambda: ensure_backend_image(engine.client, binary))
    engine.client.close()
    _step("docker compose", lambda: " ".join(ensure_compose()))
    _step("Gemma 3 270M GGUF", ensure_gemma_gguf)
    _step("tiny GGUFs", _tiny_models)
    _step("openai npm client", ensure_openai_npm)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--stop-engine", action="store_true",
                        help="stop the private dockerd an earlier run left running")
    args = parser.parse_args(argv)
    if args.stop_engine:
        print("stopped" if stop_private_engine() else "no private engine was running")
        return 0
    started = time.monotonic()
    try:
        prepare()
    except PartMissing as exc:
        print(f"PART MISSING: {exc}", file=sys.stderr)
        return 1
    print(f"all parts ready in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
