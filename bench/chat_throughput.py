"""Chat throughput: tokens/s received through Rigdeck's client against a bare httpx loop
reading the same stream from the same real llama-server, and the longest GUI stall while
the Chat page paints a 2,000-token stream.

Run: `QT_QPA_PLATFORM=offscreen .venv/bin/python -m bench.chat_throughput [--runs 7]`.
Both readers get the same prompt and max_tokens (the tiny qwen3 model, EOS ignored, so
every run is exactly max_tokens long), in alternating order; the rate is counted on the
client as content chunks over the time from the first to the last one. Goal: ratio >= 0.98,
longest GUI stall < 50 ms.

Last measured (2 shared CPU cores, tiny qwen3, 2,000 tokens, 7 runs): bare httpx median
785 tokens/s, Rigdeck 780 tokens/s, median ratio 0.993 (per-run 0.84-1.09: the machine is
shared, so single runs are noisy); longest GUI stall 28.9 / 31.2 / 31.3 ms in three
2,000-token streams (135-152 repaints each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from app.chat.client import ChatClient, ChatRequest
from tests.realparts.gguf_factory import TinyModelSpec, write_tiny_model
from tests.realparts.llama_build import ensure_llama_server
from tests.unit.app.chat.llama_process import llama_server

PROMPT = [{"role": "user", "content": "Tell me a long story"}]


def body(max_tokens: int) -> dict[str, Any]:
    return {"messages": PROMPT, "max_tokens": max_tokens, "stream": True,
            "ignore_eos": True, "temperature": 0.7, "seed": 1}


def bare_rate(url: str, max_tokens: int) -> float:
    """The least a client can do: read lines, count those that carry content."""
    count, first, last = 0, 0.0, 0.0
    with httpx.Client(timeout=60) as client, client.stream(
            "POST", f"{url}/v1/chat/completions", json=body(max_tokens)) as response:
        for line in response.iter_lines():
            if line.startswith("data: {") and '"content":"' in line:
                now = time.perf_counter()
                if not count:
                    first = now
                last = now
                count += 1
    return (count - 1) / (last - first)


def rigdeck_rate(url: str, max_tokens: int) -> float:
    extra = {"ignore_eos": True, "temperature": 0.7, "seed": 1}
    with ChatClient(url) as client:
        reply = client.stream(ChatRequest(PROMPT, max_tokens=max_tokens, extra=extra)).run()
    assert reply.error is None, reply.error
    assert reply.stream_s is not None
    return (reply.chunks - 1) / reply.stream_s


def gui_stall_ms(url: str) -> tuple[float, int]:
    """Longest gap of a 10 ms heartbeat while the Chat page streams 2,000 tokens."""
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.paths import AppPaths
    from ui.pages.chat_page import ChatPage
    from ui.services import Services

    app = QApplication.instance() or QApplication([])
    services = Services.build(AppPaths.under(Path(tempfile.mkdtemp(prefix="rigdeck-bench-"))))
    page = ChatPage(services)
    page.resize(1200, 800)
    page.show()
    page.set_endpoint(url)
    while page.status_label.text() != "Ready":
        app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(tick)
    frames: list[int] = []
    page.controller.frame.connect(lambda *_: frames.append(1))
    done = QEventLoop()
    page.controller.finished.connect(lambda _result: done.quit())
    last[0] = time.perf_counter()
    heartbeat.start()
    page.send("Tell me a long story")
    done.exec()
    heartbeat.stop()
    page.close()
    page.deleteLater()
    services.shutdown()
    return max(gaps) * 1000, len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = write_tiny_model(Path(folder) / "tiny.gguf", TinyModelSpec())
        with llama_server(ensure_llama_server(), model, context=4096,
                          extra=["--ignore-eos", "-n", str(args.max_tokens)]) as url:
            bare_rate(url, 50)  # warm up the server and the connection path
            bare: list[float] = []
            ours: list[float] = []
            for run in range(args.runs):
                pair = ((bare_rate, bare), (rigdeck_rate, ours))
                for measure, into in pair if run % 2 == 0 else reversed(pair):
                    into.append(measure(url, args.max_tokens))
            stalls = [gui_stall_ms(url) for _ in range(3)]
    ratio = statistics.median(ours) / statistics.median(bare)
    result = {
        "max_tokens": args.max_tokens, "runs": args.runs,
        "bare_tokens_per_s": [round(x) for x in bare],
        "rigdeck_tokens_per_s": [round(x) for x in ours],
        "median_ratio": round(ratio, 3),
        "per_run_ratios": [round(o / b, 3) for o, b in zip(ours, bare, strict=True)],
        "gui_longest_stall_ms": [round(s, 1) for s, _ in stalls],
        "gui_repaints": [n for _, n in stalls],
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
