"""The conversation export writes every conversation asked for and says how many. A probe
exported 31 conversations and got 13 lines: the export silently dropped every
conversation without a complete exchange (a reply that failed against a hostile server,
a question never answered)."""

from __future__ import annotations

import json
from pathlib import Path

from app.chat.history import HistoryStore
from app.chat.stream_parser import Piece
from app.paths import AppPaths
from tests.reliability.user_files_cli import rigdeck

ANSWERED, FAILED, CUT, UNANSWERED = 13, 12, 3, 3


def seed(paths: AppPaths) -> int:
    """The probe's history; returns how many conversations it holds."""
    store = HistoryStore.in_data_folder(paths.data)
    try:
        for kind, count in (("answered", ANSWERED), ("failed", FAILED), ("cut", CUT),
                            ("unanswered", UNANSWERED)):
            for number in range(count):
                chat = store.create_conversation(f"{kind} {number}")
                store.add_message(chat.id, "user", f"question {kind} {number}")
                if kind == "unanswered":
                    continue
                reply = store.begin_reply(chat.id)
                if kind == "answered":
                    reply.extend([Piece("answer", f"answer {number}")])
                    reply.finish(state="done")
                elif kind == "cut":
                    reply.extend([Piece("answer", "half an ans")])
                    reply.finish(state="stopped")
                else:
                    reply.finish(state="error", error="the server closed the stream")
    finally:
        store.close()
    return ANSWERED + FAILED + CUT + UNANSWERED


def test_every_conversation_is_exported_and_counted(app_paths: AppPaths,
                                                   tmp_path: Path) -> None:
    total = seed(app_paths)
    home = app_paths.config.parent
    out = tmp_path / "all.jsonl"
    run = rigdeck(home, "chat", "--export", "jsonl", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"exported {total} conversation(s) to {out}"
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == total == 31
    questions = [line["messages"][0]["content"] for line in lines]
    assert questions[0] == "question answered 0"  # oldest first
    assert questions[-1] == f"question unanswered {UNANSWERED - 1}"
    assert {"role": "assistant", "content": "half an ans"} in lines[ANSWERED + FAILED]["messages"]
    markdown = rigdeck(home, "chat", "--export", "md")
    assert markdown.stderr.strip() == f"exported {total} conversation(s)"
    assert markdown.stdout.count("\n---\n") == total - 1


def test_an_export_that_cannot_be_written_says_so(app_paths: AppPaths, tmp_path: Path) -> None:
    seed(app_paths)
    home = app_paths.config.parent
    missing = rigdeck(home, "chat", "--export", "jsonl", "-o", str(tmp_path / "no" / "x.jsonl"))
    assert missing.returncode == 2
    assert "cannot write" in missing.stderr
    assert "nothing was exported" in missing.stderr
    assert not (tmp_path / "no").exists()
    unknown = rigdeck(home, "chat", "--export", "jsonl", "--conversation", "999")
    assert unknown.returncode == 2
    assert "no stored conversation 999" in unknown.stderr
    for run in (missing, unknown):
        assert "Traceback" not in run.stderr
