"""Limits on what a server may make Rigdeck hold: bodies read to a cap, JSON to a depth.

A model server is trusted to serve a model, not to be well-behaved: an endless error
page, a 300 MB body or JSON nested a million levels deep must end in a message, never in
a process that grows without bound or a RecursionError traceback (issue 17). Every read
of a server's body in the chat and LoRA clients goes through here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # httpx is imported on first use (start-up time)
    import httpx

ERROR_BODY_BYTES = 64 * 1024
"""An error answer is read this far: enough for any message, never an endless page."""
JSON_BODY_BYTES = 8 * 1024 * 1024
"""A JSON answer (models, props, LoRA lists) is read this far; a chat template is ~20 KB."""
MAX_REPLY_MIB = 16
"""The longest reply kept unless the user sets another (Settings: chat_max_reply_mib)."""
MIB = 1024 * 1024
JSON_MAX_DEPTH = 64
"""Deeper JSON is refused: a chat chunk nests about 7 levels, logprobs a few more."""


class JsonTooDeepError(ValueError):
    """The JSON nests deeper than allowed; the message says how deep that is."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"the server sent JSON nested deeper than {max_depth} levels")
        self.max_depth = max_depth


def read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """The body of a streamed `response`, decoded (gzip, deflate) and read to at most
    `cap` bytes; True when there was more (the rest is never read: the caller closes
    the response, which closes the connection).

    Raises:
        httpx.HTTPError: the connection broke or the encoding is garbage.
    """
    parts: list[bytes] = []
    size = 0
    for part in response.iter_bytes():
        if size + len(part) > cap:
            parts.append(part[: cap - size])
            return b"".join(parts), True
        parts.append(part)
        size += len(part)
    return b"".join(parts), False


def loads_bounded(text: str | bytes, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """`json.loads(text)`, refusing JSON nested deeper than `max_depth` levels.

    Raises:
        JsonTooDeepError: nested too deep (also where Python's own parser would recurse out).
        ValueError: not JSON (json.JSONDecodeError, or bytes that are not UTF-8).
    """
    opened = text.count("[") + text.count("{") if isinstance(text, str) else (
        text.count(b"[") + text.count(b"{"))
    if opened <= max_depth:  # fewer brackets than levels: it cannot be too deep
        return json.loads(text)
    try:
        value = json.loads(text)
    except RecursionError:  # the C parser gives up near Python's recursion limit
        raise JsonTooDeepError(max_depth) from None
    if _deeper_than(value, max_depth):
        raise JsonTooDeepError(max_depth)
    return value


def _deeper_than(value: Any, max_depth: int) -> bool:
    """Whether `value` nests containers deeper than `max_depth` (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return False
