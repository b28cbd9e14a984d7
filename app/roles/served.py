"""What a running backend can serve: its LoRA adapters, asked over its own HTTP API.

llama.cpp lists the adapters it was started with at `GET /lora-adapters` (`id`, `path`,
`scale`); vLLM lists each loaded adapter as a model of `GET /v1/models` whose `parent`
is the base model, and loads more at `POST /v1/load_lora_adapter` when the server runs
with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True. What the API does not say (vLLM's
`--max-lora-rank`) comes from the launch plan of a backend Rigdeck started.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from app.chat.base_url import normalise_base_url
from app.chat.bounds import ERROR_BODY_BYTES, JSON_BODY_BYTES, loads_bounded, read_capped
from app.chat.plain_text import shorten
from app.errors import UserError

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 10.0
LOAD_TIMEOUT_S = 120.0
"""Loading an adapter reads its weights; a large one on a slow disk takes a while."""


@dataclass(frozen=True)
class ServedAdapter:
    """One adapter a backend holds: llama.cpp's `id` (None on vLLM) and vLLM's name."""

    name: str
    path: str
    id: int | None = None


@dataclass(frozen=True)
class ServedLoras:
    """What a backend can do with adapters. `engine` "none": it serves none at all."""

    engine: str
    adapters: tuple[ServedAdapter, ...] = ()
    base_model: str | None = None
    lora_enabled: bool = True
    max_rank: int | None = None
    runtime_loading: bool = False
    reason: str = ""
    """Why LoRA cannot be used here, when `engine` is "none"."""

    def find(self, path: str) -> ServedAdapter | None:
        """The served adapter for a role's adapter path (same path, else same file name)."""
        for adapter in self.adapters:
            if adapter.path.rstrip("/") == path.rstrip("/"):
                return adapter
        wanted = PurePosixPath(path.rstrip("/")).name
        named = [a for a in self.adapters if PurePosixPath(a.path.rstrip("/")).name == wanted
                 or a.name == wanted.removesuffix(".gguf")]
        return named[0] if len(named) == 1 else None

    def with_launch(self, *, max_rank: int | None, runtime_loading: bool) -> ServedLoras:
        """Add what only the launch plan knows (vLLM's max rank, runtime loading)."""
        if self.engine != "vllm":
            return self
        return replace(self, max_rank=max_rank, runtime_loading=runtime_loading,
                       lora_enabled=self.lora_enabled or max_rank is not None)


NO_LORA = ServedLoras("none", reason="the backend does not answer /lora-adapters or list "
                                     "adapters in /v1/models, so it cannot serve LoRA roles")


class LoraApi:
    """The LoRA endpoints of one server (llama.cpp or vLLM); close() when done."""

    def __init__(self, base_url: str, api_key: str | None = None, *,
                 timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.base_url = normalise_base_url(base_url)
        self.root_url = self.base_url.removesuffix("/v1")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        import httpx  # here, not at import: the GUI builds its services before the window

        self._http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LoraApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _get(self, url: str) -> Any:
        """The JSON at `url`, None where the server has none; the body is read to a cap
        and parsed to a depth (a hostile server cannot make this grow without bound)."""
        import httpx

        try:
            with self._http.stream("GET", url, headers=self._headers) as response:
                if response.status_code in (401, 403):
                    raise UserError(f"{self.root_url} refused the request (HTTP "
                                    f"{response.status_code}): a wrong or missing API key")
                if response.status_code != 200:
                    return None
                body, cut = read_capped(response, JSON_BODY_BYTES)
        except httpx.TransportError as exc:
            raise UserError(f"nothing answers at {self.root_url} ({exc}); start the backend "
                            "or check the URL") from exc
        except httpx.HTTPError as exc:
            log.debug("%s: %s", url, exc)
            return None
        if cut:
            log.debug("%s: an answer of more than %d bytes, ignored", url, JSON_BODY_BYTES)
            return None
        try:
            return loads_bounded(body)
        except ValueError:
            return None

    def served(self) -> ServedLoras:
        """Ask the server which adapters it holds (NO_LORA when it has no LoRA API).

        Raises:
            UserError: nothing answers at the address, or it wants another API key.
        """
        listed = self._get(f"{self.root_url}/lora-adapters")
        if isinstance(listed, list):
            return ServedLoras("llamacpp", tuple(
                ServedAdapter(PurePosixPath(str(a.get("path", ""))).name.removesuffix(".gguf"),
                              str(a.get("path", "")), int(a["id"]))
                for a in listed if isinstance(a, dict) and isinstance(a.get("id"), int)))
        models = self._get(f"{self.base_url}/models")
        data = models.get("data") if isinstance(models, dict) else None
        if not isinstance(data, list):
            return NO_LORA
        entries = [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
        if not any("parent" in m for m in entries):
            return NO_LORA
        bases = [m["id"] for m in entries if not m.get("parent")]
        adapters = tuple(ServedAdapter(m["id"], str(m.get("root") or m["id"]))
                         for m in entries if m.get("parent"))
        # runtime loading is not listed anywhere: try it (vLLM answers 404 when
        # VLLM_ALLOW_RUNTIME_LORA_UPDATING is off, and that reason is shown)
        return ServedLoras("vllm", adapters, base_model=bases[0] if bases else None,
                           lora_enabled=bool(adapters), runtime_loading=True)

    def load_vllm_adapter(self, name: str, path: str) -> None:
        """Load an adapter into a running vLLM (its runtime `load_lora_adapter` API).

        Raises:
            UserError: the server refused (runtime loading off, a bad path, rank too large)
                or could not be reached; the message carries the server's reason.
        """
        import httpx

        url = f"{self.base_url}/load_lora_adapter"
        try:
            with self._http.stream("POST", url, json={"lora_name": name, "lora_path": path},
                                   headers=self._headers, timeout=LOAD_TIMEOUT_S) as response:
                if response.status_code == 200:
                    return
                body, _ = read_capped(response, ERROR_BODY_BYTES)
        except httpx.HTTPError as exc:
            raise UserError(f"loading adapter {name} failed: {exc}") from exc
        detail = shorten(body.decode("utf-8", errors="replace"), 300)
        raise UserError(f"the backend refused to load adapter {name}: "
                        f"{detail or f'HTTP {response.status_code}'}")
