"""The PyInstaller bundle: its size on disk, and its start-up time against the virtual environment.

Start-up is process start to the main window shown (the RIGDECK_STARTUP_PROBE line, as in
bench/startup.py), for the bundled `rigdeck gui` and for `python -m app gui` from this
environment, runs alternating, medians compared. Goals: bundle under 250 MB, bundled /
venv <= 1.2.

    .venv/bin/python -m bench.bundle [--bundle dist/rigdeck] [--runs 9]

Without --bundle, the bundle is built first into a temporary folder (about a minute).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.startup import time_to_shown

ROOT = Path(__file__).resolve().parent.parent
SIZE_GOAL_MB = 250
RATIO_GOAL = 1.2


def disk_usage(folder: Path) -> int:
    """Bytes the folder takes on disk (allocated blocks; links counted as links)."""
    return sum(path.lstat().st_blocks * 512 for path in folder.rglob("*")) + 4096


def build_bundle(dist: Path) -> Path:
    subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "build_packages.py"), "bundle",
         "--dist", str(dist)],
        check=True, stdout=subprocess.DEVNULL,
    )
    return dist / "rigdeck"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="a built bundle folder (default: build one)")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rigdeck-bench-") as scratch:
        bundle = args.bundle.resolve() if args.bundle else build_bundle(Path(scratch) / "dist")
        size = disk_usage(bundle)
        env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
                   RIGDECK_STARTUP_PROBE="1", RIGDECK_HOME=str(Path(scratch) / "home"))
        commands = {
            "bundled": [str(bundle / "rigdeck"), "gui"],
            "venv": [sys.executable, "-m", "app", "gui"],
        }
        for command in commands.values():  # warm-up: both read their files from the page cache
            time_to_shown(command, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                times[name].append(time_to_shown(command, env))
    size_mb = size / 1e6
    print(f"bundle {bundle}: {size_mb:.1f} MB ({size / 2**20:.1f} MiB) on disk "
          f"(goal < {SIZE_GOAL_MB} MB) -> {'met' if size_mb < SIZE_GOAL_MB else 'MISSED'}")
    print(f"platform: {env['QT_QPA_PLATFORM']}, runs: {args.runs} each")
    for name, values in times.items():
        print(f"{name:<8} median {statistics.median(values) * 1000:7.1f} ms"
              f"  (min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})")
    ratio = statistics.median(times["bundled"]) / statistics.median(times["venv"])
    verdict = "met" if ratio <= RATIO_GOAL else "MISSED"
    print(f"ratio bundled/venv: {ratio:.2f} (goal <= {RATIO_GOAL}) -> {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
