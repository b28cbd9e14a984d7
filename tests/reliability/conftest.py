"""The hostile-server cases print their figures (peak RSS, wall time) as one table."""

from __future__ import annotations

import pytest

from tests.reliability.measure import FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("hostile server: peak RSS and wall time per case")
    terminalreporter.write_line(f"{'case':<16} {'way':<8} {'peak RSS MiB':>12} "
                                f"{'wall s':>7} {'exit':>5}  message")
    for figure in FIGURES:
        code = "-" if figure.exit_code is None else str(figure.exit_code)
        terminalreporter.write_line(
            f"{figure.case:<16} {figure.way:<8} {figure.peak_rss_mib:>12.1f} "
            f"{figure.wall_s:>7.2f} {code:>5}  {figure.message[:110]}")
