"""The official `openai` npm package, installed from the npm registry into the cache folder,
for checking Rigdeck's OpenAI-compatible endpoints with the JavaScript client (Node is on
the machine; the registry is reachable)."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path

from tests.realparts import PartMissing
from tests.realparts.cache import cache_dir

OPENAI_NPM_VERSION = "7.59.0"


def ensure_openai_npm() -> Path:
    """The node_modules folder that holds `openai` at the pinned version.

    Raises:
        PartMissing: node or npm is missing, or the install failed.
    """
    root = cache_dir() / f"npm-openai-{OPENAI_NPM_VERSION}"
    modules = root / "node_modules"
    if (modules / "openai" / "package.json").exists():
        return modules
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise PartMissing(f"{tool} is not installed: apt-get install nodejs npm")
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (modules / "openai" / "package.json").exists():
            return modules
        (root / "package.json").write_text(json.dumps(
            {"name": "rigdeck-test-clients", "private": True, "type": "module"}),
            encoding="utf-8")
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund",
                               f"openai@{OPENAI_NPM_VERSION}"], cwd=root, capture_output=True,
                              text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise PartMissing(f"npm install openai failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return modules
