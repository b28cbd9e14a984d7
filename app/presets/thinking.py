"""Think / no-think: how to ask a backend for it, and with which sampling.

Qwen3-style templates read `chat_template_kwargs.enable_thinking`; where a template does
not (or a server ignores it), the model's own soft switch `/think` / `/no_think` at the end
of the user turn does the job. Which one a backend needs is learned from its chat template
(the library reads `tokenizer.chat_template` of a GGUF; llama-server shows it at /props)
and corrected by checking answers: a no-think request that still came back with reasoning
moves that backend to the soft switch for good (`ThinkingMemory`).
"""

from __future__ import annotations

import json
import logging
from copy import deepcopy
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from app.user_files import UserFileError, folder_lock, read_text, write_atomically

log = logging.getLogger(__name__)

THINKING_SAMPLING: dict[str, float | int] = {"temperature": 0.6, "top_p": 0.95, "top_k": 20,
                                             "min_p": 0.0}
"""What Qwen recommends for thinking mode (Qwen3 model cards, "Best Practices")."""

NO_THINK_SAMPLING: dict[str, float | int] = {"temperature": 0.7, "top_p": 0.8, "top_k": 20,
                                             "min_p": 0.0}
"""What Qwen recommends for non-thinking mode."""

SOFT_THINK = "/think"
SOFT_NO_THINK = "/no_think"


class ThinkSwitch(Enum):
    TEMPLATE = "chat_template_kwargs"
    SOFT = "soft"
    NONE = "none"


@dataclass(frozen=True)
class ThinkingSupport:
    """How a backend is switched, and why; `reason` is shown by a disabled toggle."""

    switch: ThinkSwitch
    reason: str

    @property
    def available(self) -> bool:
        return self.switch is not ThinkSwitch.NONE


def support_from_template(template: str | None) -> ThinkingSupport:
    """Decide from the chat template text (None: the server did not say)."""
    if template is None:
        return ThinkingSupport(ThinkSwitch.TEMPLATE,
                               "The server does not show its chat template; Rigdeck sends "
                               "enable_thinking and checks the answers.")
    if "enable_thinking" in template:
        return ThinkingSupport(ThinkSwitch.TEMPLATE,
                               "The chat template reads enable_thinking.")
    if SOFT_NO_THINK in template or "<think>" in template:
        return ThinkingSupport(ThinkSwitch.SOFT,
                               "The chat template knows think blocks but not enable_thinking; "
                               "Rigdeck uses the /think and /no_think soft switch.")
    return ThinkingSupport(ThinkSwitch.NONE,
                           "This model's chat template has no thinking switch "
                           "(no enable_thinking, no think blocks).")


def support_from_library(thinking_switch: bool, has_template: bool) -> ThinkingSupport:
    """From a library entry's `thinking_switch` / `chat_template` flags."""
    if thinking_switch:
        return ThinkingSupport(ThinkSwitch.TEMPLATE, "The chat template reads enable_thinking.")
    if not has_template:
        return ThinkingSupport(ThinkSwitch.NONE, "The model has no chat template.")
    return ThinkingSupport(ThinkSwitch.NONE,
                           "This model's chat template has no thinking switch.")


def sampling_for(thinking: bool | None, overrides: dict[str, float | int] | None = None
                 ) -> dict[str, float | int]:
    """The recommended sampling for the mode, with the user's overrides on top."""
    base: dict[str, float | int] = {}
    if thinking is True:
        base = dict(THINKING_SAMPLING)
    elif thinking is False:
        base = dict(NO_THINK_SAMPLING)
    base.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return base


def apply_thinking(messages: list[dict[str, Any]], thinking: bool | None,
                   support: ThinkingSupport) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(messages to send, chat_template_kwargs) for the mode; the input is not changed.

    `thinking` None leaves the model's default. The soft switch is appended to the last
    user message only in what is sent, never in what is stored.
    """
    if thinking is None or support.switch is ThinkSwitch.NONE:
        return messages, None
    if support.switch is ThinkSwitch.TEMPLATE:
        return messages, {"enable_thinking": thinking}
    sent = deepcopy(messages)
    for message in reversed(sent):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            switch = SOFT_THINK if thinking else SOFT_NO_THINK
            message["content"] = f"{message['content'].rstrip()} {switch}"
            break
    return sent, None


def switch_was_ignored(thinking: bool | None, reasoning: str) -> bool:
    """A no-think request whose answer still carried reasoning: the template ignored it."""
    return thinking is False and bool(reasoning.strip())


class ThinkingMemory:
    """Backends found to ignore enable_thinking, kept in a small JSON file in the data
    folder; `problems` says why the file could not be read (it is then started afresh)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []
        self._soft = self._read()

    def _read(self) -> set[str]:
        try:
            text = read_text(self.path)
            data = json.loads(text) if text is not None else {}
            listed = data.get("soft_switch", []) if isinstance(data, dict) else None
            if not isinstance(listed, list) or not all(isinstance(k, str) for k in listed):
                raise ValueError("soft_switch must be a list of backend names")
        except UserFileError as exc:
            self._unreadable(str(exc))
            return set()
        except ValueError as exc:  # JSON or its shape; RecursionError is not a ValueError
            self._unreadable(f"{self.path}: {exc}")
            return set()
        except RecursionError:
            self._unreadable(f"{self.path}: nested too deeply")
            return set()
        return set(listed)

    def _unreadable(self, why: str) -> None:
        self.problems = [f"thinking-switch memory {why}; it starts afresh"]
        log.info("%s", self.problems[0])  # said by the window at start, `rigdeck problems`

    def support(self, backend: str, detected: ThinkingSupport) -> ThinkingSupport:
        """`detected`, unless answers showed this backend needs the soft switch."""
        if backend in self._soft and detected.switch is ThinkSwitch.TEMPLATE:
            return ThinkingSupport(ThinkSwitch.SOFT,
                                   "This backend answered a no-think request with reasoning, "
                                   "so Rigdeck uses the /no_think soft switch for it.")
        return detected

    def use_soft_switch(self, backend: str) -> None:
        """Remember `backend` (merged with what another Rigdeck wrote meanwhile); a file
        that cannot be written is logged: the memory is a cache, the answer is not lost."""
        if backend in self._soft:
            return
        self._soft.add(backend)
        try:
            with folder_lock(self.path.parent):
                self._soft |= self._read()
                write_atomically(self.path, json.dumps(
                    {"soft_switch": sorted(self._soft)}, indent=1).encode("utf-8"))
        except OSError as exc:
            log.warning("cannot save %s: %s", self.path, exc.strerror or exc)
        log.info("backend %s ignores enable_thinking; using the soft switch", backend)
