"""`rigdeck chat`: stream a reply from a backend to stdout, and list or export history.

The answer goes to stdout, the thinking to stderr (or nowhere with --hide-reasoning), so
`rigdeck chat "..." > answer.txt` keeps only the answer. Both are printed without the
terminal escape sequences and control characters a server may put in (\n and \t stay);
the history keeps the reply as it came. Every exchange is stored in the
chat history like the GUI's (unless --no-save).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TextIO

from app.chat.client import Timeouts
from app.chat.export import export_to_file, write_jsonl, write_markdown
from app.chat.history import HistoryStore
from app.chat.plain_text import ControlStripper, plain_text
from app.chat.service import ChatService
from app.chat.session import TurnSettings
from app.chat.stream_parser import Piece
from app.chat.targets import ChatTarget
from app.errors import UserError
from app.paths import AppPaths
from app.roles.binding import base_request, bind_role
from app.roles.served import REQUEST_TIMEOUT_S, LoraApi
from app.roles.store import RoleStore
from app.runtime.setup import build_service
from app.secrets import SecretStore
from app.settings import SettingsStore

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "chat", help="chat with a backend (streams to stdout); list or export history",
        description="Send a prompt to an OpenAI-compatible server and stream the answer.")
    parser.add_argument("prompt", nargs="?", help="the message to send ('-' reads stdin)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--backend", metavar="NAME",
                       help="a running backend by name (see rigdeck ps), else a saved endpoint")
    where.add_argument("--url", help="a server's base URL, e.g. http://127.0.0.1:8080")
    think = parser.add_mutually_exclusive_group()
    think.add_argument("--think", dest="thinking", action="store_const", const=True,
                       help="ask the model to think first")
    think.add_argument("--no-think", dest="thinking", action="store_const", const=False,
                       help="ask the model to answer without thinking")
    parser.add_argument("--preset", help="a preset by name (Fast, Balanced, Deep, ...)")
    parser.add_argument("--role", metavar="NAME",
                        help="a role by name: its adapters, system prompt and sampling "
                             "(see rigdeck roles)")
    parser.add_argument("--model", help="model name to send (vLLM and proxies want one)")
    parser.add_argument("--max-tokens", type=int, metavar="N", help="longest answer")
    parser.add_argument("--hide-reasoning", action="store_true",
                        help="do not print the thinking (it is still stored)")
    parser.add_argument("--conversation", type=int, metavar="ID",
                        help="continue a stored conversation (or pick one to export)")
    parser.add_argument("--no-save", action="store_true", help="keep nothing in history")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="S",
                        help="longest silence from the server before giving up (default 300)")
    parser.add_argument("--list", action="store_true", help="list stored conversations")
    parser.add_argument("--search", metavar="TEXT", help="with --list: only those containing it")
    parser.add_argument("--export", choices=("jsonl", "md"),
                        help="export all conversations (or --conversation) to stdout or -o")
    parser.add_argument("--reasoning", choices=("omit", "field", "inline"), default="omit",
                        help="with --export jsonl: how to keep the thinking (default omit)")
    parser.add_argument("-o", "--output", type=Path, help="file for --export")
    parser.set_defaults(handler=run, thinking=None)


def run(args: argparse.Namespace) -> int:
    paths: AppPaths = args.paths
    if args.list:
        return _list(paths, args.search or "")
    if args.export:
        return _export(paths, args)
    if not args.prompt:
        raise UserError("nothing to send: give a prompt, e.g. rigdeck chat --url "
                        "http://127.0.0.1:8080 \"Hello\"")
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    return _chat(paths, args, prompt)


def chat_service(paths: AppPaths, *, no_save: bool = False) -> ChatService:
    """The chat service with the backends every host runs now (an unreachable host is
    skipped: a saved endpoint or URL still works); the caller closes it and its
    `backends`. `rigdeck roles --backend` resolves its name with the same service."""
    settings = SettingsStore(paths.settings_file)
    backends = build_service(paths, settings)
    backends.refresh()
    return ChatService(paths, SecretStore(), backends,
                       history=HistoryStore(None) if no_save else None,
                       max_reply_mib=settings.settings.chat_max_reply_mib)


def _target(service: ChatService, args: argparse.Namespace) -> ChatTarget:
    """The server to talk to: --backend (a running backend, then a saved endpoint), --url
    (a backend Rigdeck runs there brings its key), or the only one there is."""
    if args.backend or args.url:
        return service.resolve(args.backend or args.url)
    targets = service.targets()
    if len(targets) == 1:
        return targets[0]
    raise UserError("which server? Pass --backend NAME or --url http://HOST:PORT "
                    f"(running or saved: {', '.join(t.name for t in targets) or 'none'})")


def _chat(paths: AppPaths, args: argparse.Namespace, prompt: str) -> int:
    service = chat_service(paths, no_save=args.no_save)
    try:
        return _turn(service, args, prompt)
    finally:
        service.close()
        service.backends.close()


def _turn(service: ChatService, args: argparse.Namespace, prompt: str) -> int:
    target = _target(service, args)
    preset = service.presets.get(args.preset) if args.preset else None
    role = RoleStore(args.paths.config / "roles").get(args.role) if args.role else None
    api_key = service.api_key(target)
    try:
        client = service.client(target, Timeouts(read=args.timeout))
    except ValueError as exc:
        raise UserError(f"{exc}: a server URL looks like http://127.0.0.1:8080") from None
    try:
        # a silent server costs the user's --timeout per question, not more
        with LoraApi(target.url, api_key,
                     timeout_s=min(REQUEST_TIMEOUT_S, args.timeout)) as api:
            settings = TurnSettings(
                thinking=args.thinking, preset=preset, model=args.model,
                max_tokens=args.max_tokens,
                role=bind_role(role, api) if role is not None else base_request(api))
        if args.conversation is not None and service.history.conversation(
                args.conversation) is None:
            raise UserError(f"no stored conversation {args.conversation} "
                            "(see rigdeck chat --list)")
        support = service.probe_with(client, target)
        if args.thinking is not None and not support.available:
            print(f"rigdeck: thinking switch not available: {support.reason}", file=sys.stderr)
        turn = service.send(args.conversation, prompt, target, settings, client=client)
        printer = _Printer(sys.stdout, None if args.hide_reasoning else sys.stderr)
        try:
            result = turn.run(printer.piece)
        except KeyboardInterrupt:
            turn.cancel()
            turn.writer.finish(state="stopped")
            printer.end()
            raise
        printer.end()
        reply = result.reply
        if result.switch_ignored and result.message.error:
            print(f"rigdeck: {plain_text(result.message.error)}", file=sys.stderr)
        if reply.error:
            code = 2 if not (reply.answer or reply.reasoning) else 1
            raise UserError(plain_text(reply.error), exit_code=code)
        log.info("reply: %s tokens/s (%s), ttft %s s, finish %s", reply.tokens_per_s,
                 reply.tokens_per_s_source, reply.ttft_s, reply.finish_reason)
        return 0
    finally:
        client.close()


class _Printer:
    """Answer to stdout, thinking to stderr, flushed per piece so it streams."""

    def __init__(self, out: TextIO, thinking: TextIO | None) -> None:
        self.out = out
        self.thinking = thinking
        self._last: str | None = None
        self._started = {"answer": False, "reasoning": False}
        self._plain = {"answer": ControlStripper(), "reasoning": ControlStripper()}
        """The server's text reaches the terminal without escape sequences."""

    def piece(self, piece: Piece) -> None:
        stream = self.out if piece.kind == "answer" else self.thinking
        if stream is None or not piece.text:
            return
        text = self._plain[piece.kind].feed(piece.text)
        if not text:
            return
        if not self._started[piece.kind]:
            text = text.lstrip()
            if not text:
                return
            self._started[piece.kind] = True
        if self.thinking is not None and piece.kind == "answer" and self._last == "reasoning":
            self.thinking.write("\n")
            self.thinking.flush()
        stream.write(text)
        stream.flush()
        self._last = piece.kind

    def end(self) -> None:
        if self._started["answer"]:
            self.out.write("\n")
            self.out.flush()
        elif self._started["reasoning"] and self.thinking is not None:
            self.thinking.write("\n")
            self.thinking.flush()


def _list(paths: AppPaths, search: str) -> int:
    store = HistoryStore.in_data_folder(paths.data)
    try:
        for conversation in store.conversations(search):
            count = len(store.messages(conversation.id))
            print(f"{conversation.id:>5}  {conversation.title}  ({count} messages, "
                  f"{conversation.endpoint or 'no endpoint'})")
    finally:
        store.close()
    return 0


def _export(paths: AppPaths, args: argparse.Namespace) -> int:
    store = HistoryStore.in_data_folder(paths.data)
    ids = [args.conversation] if args.conversation is not None else None
    try:
        if args.output:
            count = export_to_file(store, args.output, args.export, ids, args.reasoning)
            where = f" to {args.output}"
        elif args.export == "jsonl":
            count, where = write_jsonl(store, sys.stdout, ids, reasoning=args.reasoning), ""
        else:
            count, where = write_markdown(store, sys.stdout, ids), ""
        # beside the conversations on stdout the count would corrupt them: stderr then
        print(f"exported {count} conversation(s){where}",
              file=sys.stdout if args.output else sys.stderr)
    finally:
        store.close()
    return 0
