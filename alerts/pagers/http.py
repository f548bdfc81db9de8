"""The HTTP part every HTTP transport shares (Alertmanager's ``notify.PostJSON`` and retrier).

``HttpPoster.post`` makes exactly one POST with the transport's timeout and classifies the
outcome, so the webhook and WCTP transports hold only their own format:

- a reply: 2xx delivered; 408 (request timeout), 425 (too early), 429 (rate limited: dropping
  it loses the page) and every 5xx retryable; any other status final. 3xx is final too: a
  redirect means a misconfigured URL, and a page is never re-POSTed somewhere unexpected.
- no reply: a timeout or a network error (refused, reset, DNS) is retryable; a URL that can
  never work (unsupported scheme, invalid) is final.

Details are short and PHI-free: the status, or the exception *type* only (an httpx message can
carry the URL, and URLs can carry tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import httpx

from alerts.pagers.base import DeliveryResult

USER_AGENT: Final = "LabSentinel"
RETRYABLE_HTTP: Final = frozenset({408, 425, 429})


def classify_http_status(status: int) -> DeliveryResult:
    """Outcome of an HTTP reply status alone."""
    detail = f"HTTP {status}"
    if 200 <= status < 300:
        return DeliveryResult.delivered(detail, "2xx")
    status_class = f"{status // 100}xx" if 100 <= status < 600 else "other"
    if status in RETRYABLE_HTTP or 500 <= status < 600:
        return DeliveryResult.retryable(detail, status_class)
    return DeliveryResult.final(detail, status_class)


def classify_http_error(exc: httpx.HTTPError | httpx.InvalidURL) -> DeliveryResult:
    """Outcome of an httpx exception raised before a reply arrived."""
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return DeliveryResult.retryable(f"timeout ({name})", "timeout")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return DeliveryResult.final(f"bad URL ({name})", "config")
    return DeliveryResult.retryable(f"network error ({name})", "network")


def encoding_error(exc: Exception) -> DeliveryResult:
    """A message this transport cannot carry: final, since resending cannot fix it."""
    return DeliveryResult.final(f"encoding error ({type(exc).__name__})", "encoding")


@dataclass(frozen=True)
class Reply:
    """One POST's classified outcome, and the reply body (empty when no reply arrived)."""

    result: DeliveryResult
    body: bytes = b""


class HttpPoster:
    """One lazily created ``httpx.AsyncClient`` (or the caller's), redirects not followed."""

    def __init__(self, timeout_s: float, client: httpx.AsyncClient | None = None) -> None:
        self._timeout = httpx.Timeout(timeout_s)
        self._client = client
        self._owns_client = client is None

    async def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> Reply:
        """POST ``body`` once. Never raises for delivery problems: they are classified into
        the reply. Blocks (asynchronously) up to the timeout per connect, write and read."""
        try:
            response = await self._http().post(
                url,
                content=body,
                headers={**headers, "User-Agent": USER_AGENT},
                timeout=self._timeout,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return Reply(classify_http_error(exc))
        return Reply(classify_http_status(response.status_code), response.content)

    async def close(self) -> None:
        """Close the client if this poster created it. Idempotent."""
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # Created lazily, inside the running loop; reopened if used after close().
            self._client = httpx.AsyncClient(follow_redirects=False)
            self._owns_client = True
        return self._client
