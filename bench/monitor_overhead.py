"""CPU cost of monitoring: the whole pipeline (sample, store, alert, tray; and the Monitor
page's redraws when it is shown), replaying the H100 trace as 1 or 8 GPUs.

Each scenario runs the real composition root (`RigdeckApp`) in a fresh process, offscreen,
and measures the process's CPU time over a stretch of wall time after a warm-up. The
baselines are the same app with sampling off (window hidden, and window on the Monitor
page). Figures: CPU seconds per wall second (% of one core), the overhead over the
baseline, the ratio to it, and the CPU per sample (whole process, and the sampling
thread alone).

Goals: < 1 % of one core at 1 s with 8 GPUs and the window closed; < 5 % with the
Monitor page visible.

    .venv/bin/python bench/monitor_overhead.py [--seconds 20] [--trace FILE]

Offscreen Qt has no system tray, so the tray scenarios attach a real `TrayIcon` (not
shown) to the same `TrayMonitor` the app uses: its gauge icon and tooltip are updated
each sample exactly as on a desktop, minus the compositor's own work.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRACE = ROOT.parent / "shared" / "data" / "nvml_trace_h100.csv"
WARMUP_S = 3.0


def child(mode: str, interval: float, gpus: int, seconds: float) -> dict[str, float]:
    """One scenario inside this process; returns its measurements."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.paths import AppPaths
    from app.settings import SettingsStore
    from ui.application import RigdeckApp
    from ui.monitor_tray import TrayMonitor
    from ui.pages.monitor_page import MonitorPage
    from ui.tray import TrayIcon

    paths = AppPaths.default()
    store = SettingsStore(paths.settings_file)
    store.set("sampling_interval_s", interval)
    store.set("monitor_enabled", not mode.startswith("idle"))
    store.set("monitor_keep_history", False)
    qapp = QApplication([sys.argv[0]])
    rigdeck = RigdeckApp(qapp, paths)
    keep: list[object] = []
    if rigdeck.tray is None:  # offscreen: no tray; drive a real (unshown) one
        tray = TrayIcon()
        keep += [tray, TrayMonitor(rigdeck.services.monitor, tray, rigdeck.services.notifier)]
    page = rigdeck.window.pages["monitor"]
    assert isinstance(page, MonitorPage)
    if mode.endswith("page"):
        rigdeck.window.resize(1280, 800)
        rigdeck.window.show_page("monitor")
        rigdeck.window.show()
    service = rigdeck.services.monitor.service
    marks: dict[str, float] = {}

    def start() -> None:
        marks.update(
            wall=time.perf_counter(),
            cpu=time.process_time(),
            samples=service.cost.samples,
            thread_cpu=service.cost.cpu_s,
            redraws=page.redraws,
        )

    def stop() -> None:
        marks.update(
            wall_end=time.perf_counter(),
            cpu_end=time.process_time(),
            samples_end=service.cost.samples,
            thread_cpu_end=service.cost.cpu_s,
            redraws_end=page.redraws,
        )
        rigdeck.quit()

    QTimer.singleShot(int(WARMUP_S * 1000), start)
    QTimer.singleShot(int((WARMUP_S + seconds) * 1000), stop)
    qapp.exec()
    wall = marks["wall_end"] - marks["wall"]
    samples = marks["samples_end"] - marks["samples"]
    return {
        "cpu_per_wall": (marks["cpu_end"] - marks["cpu"]) / wall,
        "samples": samples,
        "cpu_per_sample_s": (marks["cpu_end"] - marks["cpu"]) / samples if samples else 0.0,
        "thread_cpu_per_sample_s": (
            (marks["thread_cpu_end"] - marks["thread_cpu"]) / samples if samples else 0.0
        ),
        "redraws": marks["redraws_end"] - marks["redraws"],
        "history_mib": service.history.nbytes / 2**20,
    }


def run_scenario(
    mode: str, interval: float, gpus: int, seconds: float, trace: Path
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ)
        env.update(
            RIGDECK_HOME=home,
            QT_QPA_PLATFORM="offscreen",
            RIGDECK_MONITOR_REPLAY=str(trace),
            RIGDECK_MONITOR_REPLAY_GPUS=str(gpus),
        )
        command = [
            sys.executable,
            __file__,
            "--child",
            mode,
            str(interval),
            str(gpus),
            str(seconds),
        ]
        done = subprocess.run(
            command,
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            cwd=ROOT,
            check=False,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{mode} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, float] = json.loads(lines[-1])
    return result


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        which, every, count, length = sys.argv[2:6]
        print(json.dumps(child(which, float(every), int(count), float(length))), flush=True)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured wall time each")
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    args = parser.parse_args()
    if not args.trace.is_file():
        raise SystemExit(f"trace {args.trace} not found")

    baseline = {
        "tray": run_scenario("idle-tray", 1.0, 1, args.seconds, args.trace),
        "page": run_scenario("idle-page", 1.0, 1, args.seconds, args.trace),
    }
    print(f"wall {args.seconds:.0f} s per scenario, after {WARMUP_S:.0f} s warm-up; offscreen Qt")
    for where, figures in baseline.items():
        print(
            f"baseline, sampling off, {where:<4}: {100 * figures['cpu_per_wall']:6.2f} % of a core"
        )
    print(
        f"{'scenario':<12}{'interval':>9}{'GPUs':>6}{'CPU %':>8}{'over %':>8}{'ratio':>9}"
        f"{'per sample':>12}{'thread':>10}{'redraws':>9}{'history':>10}  goal"
    )
    for mode in ("tray", "page"):
        for interval in (1.0, 0.1):
            for gpus in (1, 8):
                got = run_scenario(mode, interval, gpus, args.seconds, args.trace)
                base = baseline[mode]["cpu_per_wall"]
                over = got["cpu_per_wall"] - base
                goal = ""
                if interval == 1.0 and gpus == 8:
                    limit = 0.01 if mode == "tray" else 0.05
                    goal = f"< {100 * limit:.0f} %: " + ("met" if over < limit else "MISSED")
                print(
                    f"{mode:<12}{interval:>8.1f}s{gpus:>6}{100 * got['cpu_per_wall']:>8.2f}"
                    f"{100 * over:>8.2f}{got['cpu_per_wall'] / max(base, 1e-9):>8.0f}x"
                    f"{1000 * got['cpu_per_sample_s']:>10.2f}ms"
                    f"{1000 * got['thread_cpu_per_sample_s']:>8.2f}ms{got['redraws']:>9.0f}"
                    f"{got['history_mib']:>8.1f}MiB  {goal}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
