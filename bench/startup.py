"""Time from process start to the main window shown: Rigdeck against a bare reference.

The reference is a PySide6 window with one pyqtgraph plot (bench/reference_window.py),
started the same way. Runs alternate between the two; the medians and their ratio are
printed. Goal: Rigdeck / reference <= 1.5.

    .venv/bin/python bench/startup.py [--runs 9]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 1.5


def time_to_shown(command: list[str], env: dict[str, str]) -> float:
    """Seconds from starting `command` to its window shown (RIGDECK_STARTUP_PROBE line)."""
    started = time.time()
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("shown ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{command} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return float(lines[-1].split()[1]) - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["RIGDECK_STARTUP_PROBE"] = "1"
    rigdeck: list[float] = []
    reference: list[float] = []
    with tempfile.TemporaryDirectory() as home:
        env["RIGDECK_HOME"] = home
        commands = {
            "rigdeck": [sys.executable, "-m", "app", "gui"],
            "reference": [sys.executable, str(ROOT / "bench" / "reference_window.py")],
        }
        # one warm-up each, so both read their files from the page cache
        for command in commands.values():
            time_to_shown(command, env)
        for _ in range(args.runs):
            rigdeck.append(time_to_shown(commands["rigdeck"], env))
            reference.append(time_to_shown(commands["reference"], env))
    ours, theirs = statistics.median(rigdeck), statistics.median(reference)
    ratio = ours / theirs
    print(f"platform: {env['QT_QPA_PLATFORM']}, runs: {args.runs} each")
    for name, values in (("rigdeck", rigdeck), ("reference", reference)):
        print(
            f"{name:<9} median {statistics.median(values) * 1000:7.1f} ms"
            f"  (min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"
        )
    verdict = "met" if ratio <= GOAL else "MISSED"
    print(f"ratio rigdeck/reference: {ratio:.2f} (goal <= {GOAL}) -> {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
