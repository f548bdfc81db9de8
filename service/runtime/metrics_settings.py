"""The ``[metrics]`` settings: where /metrics is served and how fresh its database gauges are.

``port`` unset (the default): /metrics is served by the API on ``api.port``, next to the
clinicians' pages. Set: /metrics is served only by a small server of its own on
``host:port`` and the API's port has no /metrics, so a NetworkPolicy or firewall can let
Prometheus reach the metrics without reaching the clinical pages, and the other way round.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MetricsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    port: int | None = Field(default=None, ge=0, le=65535)
    host: str = "127.0.0.1"
    # The gauges read from the database at scrape time (exposures, open alerts, actions from
    # the CLI and other replicas) are recounted at most this often, however often scraped.
    database_refresh_s: float = Field(default=30.0, ge=0)
