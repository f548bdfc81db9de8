"""The one place that wires the application from settings (cosmicpython's ``bootstrap``).

Tests build the same objects with fakes swapped in (a fixed clock, a fake pager) by passing
them as arguments instead of patching internals.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from alerts.catalog import CatalogError, DrugCatalog, LabCatalog
from alerts.model import RuleConfig, Thresholds
from alerts.monitoring import MonitoringConfig
from alerts.pagers import TRANSPORT_TYPES
from alerts.pagers.base import Pager
from alerts.pagers.held import HeldPager
from parsers import ParserConfig
from service.db.engine import make_engine
from service.db.migrate import upgrade
from service.ingest.pipeline import Pipeline
from service.notify.alerting import Delivery
from service.notify.dispatcher import Dispatcher
from service.notify.routed import build_paging
from service.runtime import phi
from service.runtime.clinical import Clinical
from service.runtime.clock import Clock, WallClock
from service.runtime.settings import ChannelSettings, ConfigError, Settings

PAGES_OUT_CHANNEL = "pages-out"


def _read_toml(path: Path, key: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config key '{key}': file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config key '{key}': {path} is not valid TOML: {exc}") from None


def load_catalogs(settings: Settings) -> tuple[DrugCatalog, LabCatalog]:
    """Read and validate the drug and lab catalogs. Raises ConfigError naming the key."""
    drug_path = settings.resolve_path(settings.clinical.drug_catalog)
    lab_path = settings.resolve_path(settings.clinical.lab_catalog)
    try:
        drugs = DrugCatalog.from_dict(_read_toml(drug_path, "clinical.drug_catalog"))
    except CatalogError as exc:
        raise ConfigError(f"{drug_path}: {exc}") from None
    try:
        labs = LabCatalog.from_dict(_read_toml(lab_path, "clinical.lab_catalog"))
    except CatalogError as exc:
        raise ConfigError(f"{lab_path}: {exc}") from None
    return drugs, labs


def build_clinical(settings: Settings) -> Clinical:
    drugs, labs = load_catalogs(settings)
    clinical = settings.clinical
    missing = {"phosphate", "calcium", "ionized_calcium"} - set(clinical.thresholds)
    if missing:
        raise ConfigError(
            f"config key 'clinical.thresholds': missing analytes {', '.join(sorted(missing))}"
        )
    for analyte, threshold in clinical.thresholds.items():
        try:
            canonical = labs.canonical_unit(analyte)
        except (CatalogError, KeyError):
            raise ConfigError(
                f"config key 'clinical.thresholds.{analyte}': not an analyte of the lab catalog"
            ) from None
        if threshold.unit.lower() != canonical.lower():
            raise ConfigError(
                f"config key 'clinical.thresholds.{analyte}.unit': must be {canonical!r}, "
                f"the analyte's canonical unit in the lab catalog"
            )
    rules = RuleConfig(
        iron_window_days=clinical.iron_window_days,
        thresholds={
            analyte: Thresholds(unit=t.unit, warning=t.warning, high=t.high, critical=t.critical)
            for analyte, t in clinical.thresholds.items()
        },
        albumin_pairing_hours=clinical.albumin_pairing_hours,
        double_trouble_hours=clinical.double_trouble_hours,
        backfill_days=clinical.backfill_days,
        counted_statuses=tuple(s.upper() for s in clinical.counted_statuses),
        parenteral_routes=tuple(r.upper() for r in clinical.parenteral_routes),
    )
    parser = ParserConfig(
        lab_codes=labs.code_map,
        classify_drug=drugs.classify,
        identifier_types=settings.patient.identifier_types,
        identifier_authorities=settings.patient.identifier_authorities,
        timezone=settings.hospital.zone,
    )
    monitoring = settings.monitoring
    return Clinical(
        drugs=drugs,
        labs=labs,
        rules=rules,
        parser=parser,
        history_days=clinical.history_days,
        trend_drop_fraction=clinical.trend_drop_fraction,
        monitoring=MonitoringConfig(
            baseline_days_before=monitoring.baseline_days_before,
            points_days=monitoring.points_days,
            monthly_months=monitoring.monthly_months,
            grace_days=monitoring.grace_days,
        ),
        advisory_lookback_days=clinical.advisory_lookback_days,
        advisory_late_days=clinical.advisory_late_days,
    )


def channel_settings(settings: Settings, pages_out: Path | None) -> dict[str, ChannelSettings]:
    channels = {name: ch for name, ch in settings.channels.items() if ch.enabled}
    if pages_out is not None:
        # ``path`` is an extra key (extra="allow"): pydantic's __init__ signature cannot declare it.
        channels[PAGES_OUT_CHANNEL] = ChannelSettings(type="jsonl", path=str(pages_out))  # type: ignore[call-arg]
    return channels


def build_transports(channels: Mapping[str, ChannelSettings]) -> dict[str, Pager]:
    transports: dict[str, Pager] = {}
    for name, channel in channels.items():
        options = dict(channel.model_extra or {})
        try:
            # Transport classes take different keyword arguments (from the channel's settings).
            factory: Callable[..., Pager] = TRANSPORT_TYPES[channel.type]
            transports[name] = factory(name=name, **options)
        except TypeError as exc:
            raise ConfigError(f"config key 'channels.{name}': {exc}") from None
    return transports


def build_delivery(settings: Settings, channels: Mapping[str, ChannelSettings]) -> Delivery:
    """The pipeline's delivery with the application's one paging (routed or flat). Raises
    ConfigError naming the key or the routing file; blocks on reading that file."""
    names = [c for c in settings.routing.default_channels if c in channels]
    unknown = [c for c in settings.routing.default_channels if c not in settings.channels]
    if unknown:
        raise ConfigError(
            f"config key 'routing.default_channels': no channel named {', '.join(unknown)}"
        )
    if PAGES_OUT_CHANNEL in channels:
        names.append(PAGES_OUT_CHANNEL)
    deadline = timedelta(seconds=settings.dispatcher.deadline_s)
    # Routing may address every enabled channel and ``--pages-out``.
    enabled = {name for name, channel in settings.channels.items() if channel.enabled}
    paging = build_paging(
        settings,
        enabled | set(names),
        audit_channels=tuple(names),
        recipients=settings.routing.default_recipients,
        deadline=deadline,
    )
    return Delivery(
        channels=tuple(names),
        recipients=settings.routing.default_recipients,
        deadline=deadline,
        paging=paging,
        base_url=settings.api.base_url,
    )


def open_database(settings: Settings, *, migrate: bool = True) -> Engine:
    engine = make_engine(
        settings.database.url, pool_size=settings.database.pool_size, echo=settings.database.echo
    )
    if migrate:
        upgrade(engine)
    return engine


@dataclass
class App:
    settings: Settings
    engine: Engine
    clinical: Clinical
    pipeline: Pipeline
    dispatcher: Dispatcher

    def close(self) -> None:
        self.engine.dispose()


def build_app(
    settings: Settings,
    *,
    pages_out: Path | None = None,
    clock: Clock | None = None,
    transports: Mapping[str, Pager] | None = None,
    migrate: bool = True,
    held: bool = False,
) -> App:
    """Validate everything, open (and migrate) the database, wire pipeline and dispatcher.

    ``held`` (``replay --no-deliver``): every configured channel is replaced by a transport
    that sends nothing; only the ``pages_out`` file receives the notifications.
    """
    phi.configure_salt(settings.patient.log_hash_salt.get_secret_value())
    clinical = build_clinical(settings)
    channels = channel_settings(settings, pages_out)
    delivery = build_delivery(settings, channels)
    real_transports = dict(transports) if transports is not None else build_transports(channels)
    if held:
        real_transports = {
            name: pager if name == PAGES_OUT_CHANNEL else HeldPager(name)
            for name, pager in real_transports.items()
        }
    engine = open_database(settings, migrate=migrate)
    wall = WallClock()
    pipeline = Pipeline(
        engine,
        clinical,
        delivery,
        clock=clock or wall,
        wall_clock=wall,
        max_message_bytes=settings.kafka.max_message_bytes,
    )
    # One paging for both: routing (or the flat default) decides who the pipeline's
    # notifications go to, and the dispatcher's fallback route and page identity.
    dispatcher = Dispatcher(
        engine, real_transports, settings.dispatcher, paging=delivery.paging, clock=wall
    )
    return App(
        settings=settings,
        engine=engine,
        clinical=clinical,
        pipeline=pipeline,
        dispatcher=dispatcher,
    )
