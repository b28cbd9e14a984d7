"""Chat long replies: the longest GUI stall while the Chat page opens a stored
conversation holding a 10 MB and a 100 MB reply, and while "Show all" fills the 10 MB one,
against opening a conversation of two short replies in the same run (the reference).

Run: `QT_QPA_PLATFORM=offscreen .venv/bin/python -m bench.chat_long_reply [--runs 3]`.
A 10 ms QTimer heartbeat records the largest gap between its ticks from the moment the
conversation is chosen until every message widget is built (and, for Show all, until the
viewer holds the whole text). Goal: longest stall < 50 ms in every phase (before this
bench's change, opening the 100 MB reply froze the window for over 10 minutes, 10 MB for
2.6 s).

Last measured (2 CPU cores shared with a CI run, 2 x 3 runs after a warm-up): reference
16-21 ms; opening the 10 MB + 100 MB conversation 17 / 31 / 34 and 22 / 16 / 29 ms; Show
all of the 10 MB reply (its whole text read, then laid out) 28-43 ms. Before the view read
previews (SQLite cuts a long answer to its start and end, `HistoryStore.preview_messages`),
opening took 95 / 121 / 161 ms: the reading worker made the 100 MB row one Python string
while it held the GIL.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

LINE = "The quick brown fox jumps over the lazy dog, again and again and again.\n"


class Heartbeat:
    """The largest gap between ticks of a 10 ms timer on the GUI thread."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._on_timer_timeout)

    def start(self) -> None:
        self.gaps = []
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> float:
        self._timer.stop()
        self.gaps.append(time.perf_counter() - self._last)
        return max(self.gaps) * 1000

    def _on_timer_timeout(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now


def seed(data: Path) -> tuple[int, int]:
    from app.chat.history import HistoryStore

    store = HistoryStore.in_data_folder(data)
    small = store.create_conversation("Short")
    for role, text in (("user", "Hi"), ("assistant", "Hello! **How** can I help?"),
                       ("user", "A list?"), ("assistant", "- one\n- two\n\n```py\nx = 1\n```")):
        store.add_message(small.id, role, text)
    huge = store.create_conversation("Huge")
    for role, text in (("user", "10 MB"), ("assistant", LINE * (10_000_000 // len(LINE))),
                       ("user", "100 MB"), ("assistant", LINE * (100_000_000 // len(LINE)))):
        store.add_message(huge.id, role, text)
    store.close()
    return small.id, huge.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    from app.paths import AppPaths
    from ui.pages.chat_page import ChatPage
    from ui.services import Services

    app = QApplication.instance() or QApplication([])
    paths = AppPaths.under(Path(tempfile.mkdtemp(prefix="rigdeck-bench-")))
    small, huge = seed(paths.data)
    services = Services.build(paths)
    page = ChatPage(services)
    page.resize(1200, 800)
    page.show()
    heartbeat = Heartbeat()

    def wait(done: object) -> None:
        while not done():  # type: ignore[operator]
            app.processEvents()
            time.sleep(0.001)

    def open_ms(conversation: int, widgets: int) -> float:
        page.open_conversation(None)
        app.processEvents()
        # the widgets just dropped go now, not inside the measured open
        app.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
        heartbeat.start()
        page.open_conversation(conversation)
        wait(lambda: len(page.message_list.widgets) == widgets
             and not page.message_list.building)
        return heartbeat.stop()

    results: dict[str, list[float]] = {"reference_open_short": [], "open_10mb_100mb": [],
                                       "show_all_10mb": []}
    open_ms(small, 4)  # warm up: PySide builds its widget types on first use
    open_ms(huge, 4)
    for _ in range(args.runs):
        results["reference_open_short"].append(open_ms(small, 4))
        results["open_10mb_100mb"].append(open_ms(huge, 4))
        long_text = page.message_list.widgets[1].answer.long_text
        assert long_text is not None
        heartbeat.start()
        long_text.show_all()
        wait(lambda shown=long_text: shown.complete)
        results["show_all_10mb"].append(heartbeat.stop())
    page.close()
    services.shutdown()
    reference = max(results["reference_open_short"])
    print(json.dumps({
        **{name: [round(v, 1) for v in values] for name, values in results.items()},
        "worst_ratio_to_reference": round(max(*results["open_10mb_100mb"],
                                              *results["show_all_10mb"]) / reference, 2),
        "goal_ms": 50,
    }, indent=1))


if __name__ == "__main__":
    main()
