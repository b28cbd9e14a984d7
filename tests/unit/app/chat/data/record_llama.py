"""Records real llama-server SSE streams into this folder (run by hand when llama.cpp moves).

`python -m tests.unit.app.chat.data.record_llama` starts the cached llama-server with a
tiny qwen3 model, sends each request twice (streamed, recorded byte for byte; and not
streamed, whose parsed message is the expected result), and writes NAME.sse and
NAME.expected.json. Sampling is greedy with a fixed seed, so both runs say the same.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import httpx

from tests.realparts.gguf_factory import TinyModelSpec, write_tiny_model
from tests.realparts.llama_build import ensure_llama_server
from tests.unit.app.chat.llama_process import LONE_CLOSE_GRAMMAR, THINK_GRAMMAR, llama_server

HERE = Path(__file__).parent

CASES: dict[str, dict[str, Any]] = {
    "llama_plain": {"max_tokens": 24},
    "llama_reasoning_content": {"max_tokens": 80, "grammar": THINK_GRAMMAR},
    "llama_inline_think": {"max_tokens": 80, "grammar": THINK_GRAMMAR,
                           "reasoning_format": "none"},
    "llama_lone_close": {"max_tokens": 80, "grammar": LONE_CLOSE_GRAMMAR,
                         "reasoning_format": "none"},
}


def _split_inline(content: str) -> tuple[str, str]:
    """The oracle for inline tags: plain string splitting of the whole text."""
    if "</think>" not in content:
        return "", content
    before, _, after = content.partition("</think>")
    return before.split("<think>")[-1], after


def record() -> None:
    binary = ensure_llama_server()
    with tempfile.TemporaryDirectory() as folder:
        model = write_tiny_model(Path(folder) / "tiny.gguf", TinyModelSpec())
        with llama_server(binary, model) as url, httpx.Client(timeout=30) as client:
            for name, extra in CASES.items():
                body = {"messages": [{"role": "user", "content": "Hello"}],
                        "temperature": 0, "seed": 7, **extra}
                with client.stream("POST", f"{url}/v1/chat/completions",
                                   json={**body, "stream": True,
                                         "stream_options": {"include_usage": True}}) as resp:
                    raw = resp.read()
                (HERE / f"{name}.sse").write_bytes(raw)
                message = client.post(f"{url}/v1/chat/completions",
                                      json=body).json()["choices"][0]["message"]
                content = message.get("content") or ""
                reasoning = message.get("reasoning_content") or ""
                if extra.get("reasoning_format") == "none":
                    reasoning, content = _split_inline(content)
                expected = {"answer": content.strip(), "reasoning": reasoning.strip()}
                (HERE / f"{name}.expected.json").write_text(json.dumps(expected, indent=1))
                print(name, expected)


if __name__ == "__main__":
    record()
