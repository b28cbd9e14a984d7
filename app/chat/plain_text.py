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
    r"|\x1b[ -/]*[0-~]"                    # any other escape sequence (ESC ( B, ESC c, ...)
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
        escape = text.rfind("\x1b", max(0, len(text) - HELD_CHARS))
        if escape >= 0 and not _SEQUENCE.match(text, escape) and _may_continue(text[escape:]):
            text, self._held = text[:escape], text[escape:]
        return plain_text(text)

    def finish(self) -> str:
        """What is left at the end: an unfinished sequence is dropped, not shown."""
        self._held = ""
        return ""


def _may_continue(tail: str) -> bool:
    """Whether `tail` (starting with ESC) is the start of a sequence not yet complete."""
    if len(tail) >= HELD_CHARS:
        return False
    if len(tail) == 1:
        return True
    kind = tail[1]
    if kind == "[":
        return re.fullmatch(r"\x1b\[[0-?]*[ -/]*", tail) is not None
    if kind in "]PX^_":
        return True  # a string sequence runs until its terminator (or HELD_CHARS)
    return re.fullmatch(r"\x1b[ -/]+", tail) is not None
