"""Server text made safe to show: terminal escape sequences and control characters out.

A reply or an error page is the server's text, and a server (or a model told to by a
prompt) can put `ESC ] 52` (write the clipboard), `ESC [ 2 J` (clear the screen), a
title change or a carriage return that hides what came before into it. `rigdeck chat`
prints replies and messages through `plain_text`/`ControlStripper`, which keep `\\n` and
`\\t` and drop every other C0/C1 control with the sequence it starts. The stored reply
keeps the text as the server sent it.
"""

from __future__ import annotations

import re

_COMPLETE = (
    r"\x1b\[[0-?]*[ -/]*[@-~]"            # CSI: ESC [ params intermediates final
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: ESC ] ... BEL or ST
    r"|\x1b[PX^_][^\x1b]*\x1b\\"          # DCS, SOS, PM, APC: ... ST
    r"|\x1b[ -/]*[0-OQ-WYZ\\`-~]"          # any other: ESC ( B, ESC c (not [ ] P X ^ _)
)
_SEQUENCE = re.compile(_COMPLETE)
_CONTROL_OR_SEQUENCE = re.compile(_COMPLETE + r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""A whole sequence, else one control character (a lone ESC, CR, BEL, C1 CSI ...)."""

HELD_CHARS = 4096
"""An unfinished sequence is held this long for the rest of it, then dropped as junk."""


def plain_text(text: str) -> str:
    """`text` without escape sequences and control characters (`\\n` and `\\t` stay)."""
    return _CONTROL_OR_SEQUENCE.sub("", text)


def shorten(text: str, limit: int = 500) -> str:
    """`text` made plain and cut to `limit` characters, saying so where it was cut."""
    text = plain_text(text).strip()
    return text if len(text) <= limit else f"{text[:limit].rstrip()}… (shortened)"


class ControlStripper:
    """`plain_text` for a text that arrives in pieces: a sequence cut between two pieces
    (`ESC [ 3` then `1m`) is held until it is whole, so none of it reaches the screen."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        text = self._held + text
        self._held = ""
        unfinished = _unfinished_at(text)
        if unfinished >= 0:
            text, self._held = text[:unfinished], text[unfinished:]
        return plain_text(text)

    def finish(self) -> str:
        """What is left at the end: an unfinished sequence is dropped, not shown."""
        self._held = ""
        return ""


def _unfinished_at(text: str) -> int:
    """Where a sequence begins that the end of `text` leaves unfinished (-1: none)."""
    at = text.find("\x1b", max(0, len(text) - HELD_CHARS))
    while at >= 0:
        whole = _SEQUENCE.match(text, at)
        if whole is not None:
            at = text.find("\x1b", whole.end())
        elif _may_continue(text[at:]):
            return at
        else:
            at = text.find("\x1b", at + 1)
    return -1


_STARTS = (
    re.compile(r"\x1b\[[0-?]*[ -/]*"),      # CSI without its final byte
    re.compile(r"\x1b\][^\x07\x1b]*\x1b?"),  # OSC without its terminator
    re.compile(r"\x1b[PX^_][^\x1b]*\x1b?"),  # DCS, SOS, PM, APC without theirs
    re.compile(r"\x1b[ -/]*"),              # ESC, ESC ( ... without the final byte
)


def _may_continue(tail: str) -> bool:
    """Whether `tail` (starting with ESC) is the start of a sequence not yet complete."""
    return len(tail) < HELD_CHARS and any(start.fullmatch(tail) for start in _STARTS)
