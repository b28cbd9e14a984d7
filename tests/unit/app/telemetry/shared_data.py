"""The measured reference data: shared/data beside the checkout (in CI and in development).

Under CI=true a missing file fails the test; elsewhere it skips.
"""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[4]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():
        message = f"reference data {path} is missing"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def h100_trace() -> Path:
    """The real 10 Hz NVML trace of an H100 under a llama-server load."""
    return shared_file("nvml_trace_h100.csv")
