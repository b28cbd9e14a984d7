"""Where built parts are cached: outside the checkout, so a second run reuses them."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder for test parts (RIGDECK_TEST_CACHE, else ~/.cache/rigdeck-test)."""
    root = os.environ.get("RIGDECK_TEST_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "rigdeck-test"
    path.mkdir(parents=True, exist_ok=True)
    return path
