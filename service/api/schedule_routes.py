"""``GET /schedule``: who is on call, per team and tier, for the next days (overrides and
imported shifts included), as the running daemon would page them.

The routing comes from the application's paging when this process runs the pipeline (the
daemon: what a SIGHUP reload put in use), else from the routing file and its roster changes
on disk. Server-rendered tables that wrap on a phone; no script. Needs the ``viewer`` role
(``service.api.principal.require_role``), as the worklist does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from alerts.roster_timeline import Segment, tier_segments
from alerts.routing import RoutingConfig
from service.api.context import ApiContext, context_of
from service.api.principal import Principal, require_role
from service.api.web_routes import render
from service.notify.delivery import load_team_routing
from service.notify.routed import RoutedPaging
from service.runtime.settings import ConfigError

router = APIRouter(include_in_schema=False)
VIEWER = Depends(require_role("viewer"))
DAYS = 7


@dataclass(frozen=True)
class TierView:
    tier: int
    segments: list[Segment]


@dataclass(frozen=True)
class TeamView:
    id: str
    name: str
    tiers: list[TierView]


def routing_in_use(ctx: ApiContext) -> RoutingConfig | None:
    """The routing the pipeline pages with, else the files' (None: flat paging, no file).
    Raises ConfigError when the files do not validate."""
    paging = ctx.pipeline.delivery.paging if ctx.pipeline is not None else None
    if isinstance(paging, RoutedPaging):
        return paging.routing
    if not ctx.settings.routing.config:
        return None
    channels = [name for name, ch in ctx.settings.channels.items() if ch.enabled]
    return load_team_routing(ctx.settings, channels).routing


def schedule_of(routing: RoutingConfig, start: datetime, days: int) -> list[TeamView]:
    end = start + timedelta(days=days)
    return [
        TeamView(
            team.id,
            team.name or team.id,
            [
                TierView(tier, tier_segments(team.schedule, tier, start, end))
                for tier in range(1, team.schedule.tier_count + 1)
            ],
        )
        for team in routing.teams.values()
    ]


@router.get("/schedule")
def schedule(request: Request, _: Principal = VIEWER) -> Response:
    ctx = context_of(request)
    now = ctx.clock.now()
    try:
        routing = routing_in_use(ctx)
    except ConfigError as exc:
        # The operator's configuration error (file and key), never patient data.
        text = f"The routing file does not validate: {exc}"
        return render(request, "message.html", {"title": "No schedule", "text": text}, 503)
    if routing is None:
        text = "No routing file is configured (routing.config): every page goes to the defaults."
        return render(request, "message.html", {"title": "No schedule", "text": text})
    return render(
        request,
        "schedule.html",
        {
            "teams": schedule_of(routing, now, DAYS),
            "people": routing.people,
            "days": DAYS,
            "now": now,
            "zone": ctx.settings.hospital.zone.key,
        },
    )
