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


def answers_to_key(client: httpx.Client, base_url: str, api_key: str) -> bool:
    """Whether the server on `base_url` accepts this backend's own API key.

    /health answers without a key, so a server of someone else's on the same port (a
    backend that lost the race for it) would look ready; only ours knows our key.
    """
    try:
        response = client.get(
            f"{base_url}/v1/models",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=PROBE_TIMEOUT_S,
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200
