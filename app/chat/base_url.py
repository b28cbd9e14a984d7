"""Where an OpenAI-compatible server's API lives, however the user typed its address.

Apart from the client, so the pages and services that only compare addresses do not
import httpx.
"""


def normalise_base_url(url: str) -> str:
    """`http://host:8080`, `.../v1` and `.../v1/` all become `http://host:8080/v1`.

    Raises:
        ValueError: not an http(s) URL.
    """
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    if url.endswith("/chat/completions"):
        url = url[: -len("/chat/completions")]
    if not url.endswith("/v1"):
        url += "/v1"
    return url
