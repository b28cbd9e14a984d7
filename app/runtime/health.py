"""Is a backend's HTTP server up, loading or ready? One short GET of /health."""

from __future__ import annotations

import httpx

PROBE_TIMEOUT_S = 2.0


def probe(client: httpx.Client, url: str) -> str:
    """"ready" (200), "loading" (answers, not yet 200: 503 while the model loads) or "down"."""
    try:
        response = client.get(url, timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return "down"
    return "ready" if response.status_code == 200 else "loading"
