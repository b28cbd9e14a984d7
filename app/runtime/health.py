"""Is a backend's HTTP server up, loading or ready? One short GET of /health.

httpx is imported, and its client made, on the first probe (a worker thread): at module
level it sat on the path to the window's first paint.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

PROBE_TIMEOUT_S = 2.0


class HealthProbe:
    """Probes backends' servers over one keep-alive client; safe from any thread."""

    def __init__(self) -> None:
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _get(self, url: str, headers: dict[str, str] | None = None) -> int | None:
        """The status code of GET url, or None when nothing answers."""
        import httpx

        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=PROBE_TIMEOUT_S, trust_env=False)
            client = self._client
        try:
            return client.get(url, headers=headers, timeout=PROBE_TIMEOUT_S).status_code
        except httpx.HTTPError:
            return None

    def state(self, url: str) -> str:
        """"ready" (200), "loading" (answers, not yet 200: 503 while the model loads) or
        "down"."""
        status = self._get(url)
        if status is None:
            return "down"
        return "ready" if status == 200 else "loading"

    def answers_to_key(self, base_url: str, api_key: str) -> bool:
        """Whether the server on `base_url` accepts this backend's own API key.

        /health answers without a key, so a server of someone else's on the same port (a
        backend that lost the race for it) would look ready; only ours knows our key.
        """
        return self._get(f"{base_url}/v1/models",
                         headers={"Authorization": f"Bearer {api_key}"}) == 200

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
