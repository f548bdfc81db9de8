"""The ``[http]`` settings: how much an HTTP client may send, how slowly, how often it may sign in.

Read by the API server (``service.api.server``: uvicorn's own limits) and by the request-limits
middleware (``service.api.limits``: body size, body deadline, sign-in rate). The shipped values
and their sources are in configs/labsentinel.toml.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HttpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Largest request body of the JSON API, bytes (Content-Length checked before the app
    # runs; a chunked body is counted as it arrives and cut off once it passes this).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Largest body of POST /login (a form with one token and a path).
    login_max_body_bytes: int = Field(default=8 * 1024, ge=256, le=1024 * 1024)
    # The whole body must have arrived this many seconds after the app first asks for it; a
    # body that trickles in (slow loris) is answered 408 and its connection closed.
    body_read_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    # The request line and headers must have arrived this many seconds after the connection
    # opened (or the previous response ended); else the connection is closed.
    header_read_timeout_s: float = Field(default=20.0, gt=0, le=3600)
    # uvicorn's timeout_keep_alive: an idle connection is closed after this many seconds.
    keep_alive_timeout_s: int = Field(default=5, ge=1, le=600)
    # uvicorn's h11_max_incomplete_event_size: the request line plus headers, bytes.
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    # uvicorn's limit_concurrency: connections and tasks at once before it answers 503.
    max_connections: int = Field(default=200, ge=1, le=100_000)
    # Failed sign-ins (POST /login) per client address: a burst, then one per refill period.
    login_burst_per_address: int = Field(default=10, ge=1, le=10_000)
    # ... and per account name, when the sign-in form names one.
    login_burst_per_account: int = Field(default=5, ge=1, le=10_000)
    # Seconds for one spent attempt to come back, for both buckets.
    login_refill_s: float = Field(default=60.0, gt=0, le=86_400)
