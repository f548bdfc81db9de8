"""Where notifications go: the default channels and recipients, and the routing when wired.

``Delivery`` is what bootstrap builds from the settings (default channels × default
recipients, the dispatcher deadline). ``routed_delivery`` adds ``Paging`` when
``routing.config`` names a routing file: teams, on-call schedules and escalation policies
(``alerts.routing``), the audit channels that receive every notification once, and the
settings that building a page needs (ack links, page identity).

Reads the routing file (cached per path, zone and channel set); writes nothing.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from alerts.routing import RoutingConfig, RoutingError, load_routing
from service.runtime.settings import ConfigError, Settings

# The events of an alert that page (and carry an ack link); the others are notices.
PAGE_EVENTS = ("alert", "update", "escalation")
# Channel types that reach people outside LabSentinel: the page identity setting applies.
PAGING_TYPES = ("wctp", "smtp", "webhook")


@dataclass(frozen=True)
class Paging:
    """Routing, schedules and policies plus what building a page needs from the settings."""

    routing: RoutingConfig
    settings: Settings
    audit_channels: tuple[str, ...]
    deadline: timedelta


@dataclass(frozen=True)
class Delivery:
    """Where notifications go. Without ``paging``: ``channels`` × ``recipients`` (the
    pre-routing behaviour); with it: routed per team, ``channels`` being the audit channels."""

    channels: tuple[str, ...]
    recipients: tuple[str, ...]
    deadline: timedelta
    base_url: str = ""
    paging: Paging | None = None

    def flat_deliveries(self) -> list[tuple[str, str]]:
        """Without a routing file: every default channel × every default recipient."""
        return [(c, r) for c in self.channels for r in self.recipients]


def load_paging(settings: Settings, channels: Iterable[str]) -> Paging | None:
    """Read and validate ``routing.config`` (None when it is empty).

    Raises ConfigError naming the key or the file. Blocks on reading the file (once per
    path, zone and channel set).
    """
    if not settings.routing.config:
        return None
    path = settings.resolve_path(settings.routing.config)
    channels = tuple(channels)
    try:
        routing = _load_routing(str(path), settings.hospital.timezone, channels)
    except FileNotFoundError:
        raise ConfigError(f"config key 'routing.config': file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config key 'routing.config': {path} is not valid TOML: {exc}") from None
    except RoutingError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    audit = tuple(c for c in settings.routing.default_channels if c in channels)
    audit += tuple(c for c in channels if c not in settings.channels and c not in audit)
    return Paging(routing, settings, audit, timedelta(seconds=settings.dispatcher.deadline_s))


@functools.lru_cache(maxsize=8)
def _load_routing(path: str, timezone: str, channels: tuple[str, ...]) -> RoutingConfig:
    with Path(path).open("rb") as fh:
        doc = tomllib.load(fh)
    return load_routing(doc, ZoneInfo(timezone), channels)


def paging_for(settings: Settings) -> Paging | None:
    """The paging of ``settings`` alone (its enabled channels). Raises ConfigError."""
    channels = [name for name, ch in settings.channels.items() if ch.enabled]
    return load_paging(settings, channels)


def routed_delivery(delivery: Delivery, settings: Settings) -> Delivery:
    """``delivery`` (as bootstrap built it) with paging wired; idempotent. Raises ConfigError."""
    if delivery.paging is not None:
        return delivery
    channels = {n for n, c in settings.channels.items() if c.enabled} | set(delivery.channels)
    paging = load_paging(settings, sorted(channels))
    if paging is None:
        return delivery
    paging = replace(paging, audit_channels=delivery.channels, deadline=delivery.deadline)
    return replace(delivery, paging=paging)
