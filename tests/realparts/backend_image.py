"""Builds the backend image the integration tests run: the real llama-server, and beside it
`llama-perplexity` and `llama-bench` from the same build (the Bench runs them in the image
its backends run), nothing else.

No image registry is reachable, so the image is a `docker import` of a root filesystem
holding the built binaries, the shared libraries `ldd` lists for each and the dynamic
loader, at the paths the binaries expect. The image is labelled with the server's sha256
and rebuilt only when the binary (or RECIPE_VERSION) changes. The engine has no bridge,
so containers use host networking and are told `--host 127.0.0.1 --port N`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import subprocess
import tarfile
from pathlib import Path

import docker
import docker.errors

from tests.realparts import PartMissing
from tests.realparts.llama_build import LLAMA_CPP_PYTHON_VERSION, TARGETS

log = logging.getLogger(__name__)

RECIPE_VERSION = "2"
"""Bump when the image layout changes, so cached images are rebuilt."""
IMAGE_REPOSITORY = "rigdeck-test/llama-server"
IMAGE_TAG = f"{LLAMA_CPP_PYTHON_VERSION}-recipe{RECIPE_VERSION}"
"""The recipe is in the tag: checkouts of two recipes share one test engine, and with one
tag each re-imported it over the other's (a recipe-1 image has no llama-bench, so a run
of the other recipe failed when the image changed under it)."""
IMAGE = f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"
SHA_LABEL = "rigdeck-test.llama-server.sha256"
BIN_DIR = "/usr/local/bin"
SERVER_PATH = f"{BIN_DIR}/llama-server"
RECIPE_LABEL = "rigdeck-test.recipe"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shared_libraries(binary: Path) -> list[Path]:
    """The absolute paths of the libraries (and loader) `ldd` says the binary loads.

    Raises:
        PartMissing: ldd failed or reported a library as not found.
    """
    done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PartMissing(f"ldd {binary} failed: {done.stderr.strip() or done.stdout.strip()}")
    if "not found" in done.stdout:
        raise PartMissing(f"{binary} needs libraries this machine lacks:\n{done.stdout}")
    found = re.findall(r"(/\S+)\s+\(0x", done.stdout)
    return [Path(p) for p in found]


def _add_file(tar: tarfile.TarFile, source: Path, target: str, mode: int = 0o755) -> None:
    """Add source's content (links followed) at target inside the image."""
    data = source.read_bytes()
    info = tarfile.TarInfo(target.lstrip("/"))
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, target: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(target.lstrip("/"))
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def image_binaries(binary: Path) -> list[Path]:
    """The server and the tools built beside it (TARGETS), each of which must be there.

    Raises:
        PartMissing: a tool is missing beside the server (an older build: rebuild it).
    """
    found = [binary.with_name(name) for name in TARGETS]
    missing = [p.name for p in found if not p.exists()]
    if missing:
        raise PartMissing(f"{', '.join(missing)} missing beside {binary}: run "
                          "`python -m tests.realparts.llama_build`")
    return found


def root_filesystem(binary: Path) -> bytes:
    """A tar of the image's root filesystem: the server and its tools in /usr/local/bin,
    every library one of them loads, an empty /tmp."""
    out = io.BytesIO()
    binaries = image_binaries(binary)
    with tarfile.open(fileobj=out, mode="w") as tar:
        _add_dir(tar, "/tmp", 0o1777)
        _add_dir(tar, "/models")
        # Directories first, so every entry's parent exists when docker unpacks it.
        libraries = sorted({lib for tool in binaries for lib in shared_libraries(tool)})
        parents = sorted({str(p) for lib in libraries for p in lib.parents if str(p) != "/"}
                         | {"/usr", "/usr/local", BIN_DIR}, key=len)
        for parent in parents:
            _add_dir(tar, parent)
        for lib in libraries:
            _add_file(tar, lib, str(lib))
        for tool in binaries:
            _add_file(tar, tool, f"{BIN_DIR}/{tool.name}")
    return out.getvalue()


def _current_image(client: docker.DockerClient, sha: str) -> str | None:
    """The id of the tagged image if it was built from this binary and recipe."""
    try:
        image = client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        return None
    labels = image.labels or {}
    if labels.get(SHA_LABEL) == sha and labels.get(RECIPE_LABEL) == RECIPE_VERSION:
        return str(image.id)
    return None


def ensure_backend_image(client: docker.DockerClient, binary: Path) -> str:
    """The tag of an image running this llama-server binary, importing it when needed.

    Raises:
        PartMissing: ldd or the import failed.
    """
    sha = _sha256(binary)
    if _current_image(client, sha) is not None:
        return IMAGE
    try:
        stale: str | None = str(client.images.get(IMAGE).id)
    except docker.errors.ImageNotFound:
        stale = None
    log.info("importing %s from %s", IMAGE, binary)
    changes = [
        f"ENTRYPOINT {json.dumps([SERVER_PATH])}",
        f"LABEL {SHA_LABEL}={sha} {RECIPE_LABEL}={RECIPE_VERSION}",
        "WORKDIR /",
    ]
    try:
        client.api.import_image_from_data(root_filesystem(binary), repository=IMAGE_REPOSITORY,
                                          tag=IMAGE_TAG, changes=changes)
    except docker.errors.APIError as exc:
        raise PartMissing(f"docker import of {IMAGE} failed: {exc}") from exc
    if _current_image(client, sha) is None:
        raise PartMissing(f"docker import reported success but {IMAGE} is not there")
    if stale is not None:
        # The old build lost its tag; drop it unless a container still uses it.
        try:
            client.images.remove(stale)
        except docker.errors.APIError as exc:
            log.info("kept the previous image %s: %s", stale, exc)
    return IMAGE
