"""One typed settings tree: shipped TOML defaults < the site's TOML file < LABSENTINEL_* env.

Validated once at start and passed down; nothing else reads the environment. Errors name the
key (``kafka.bootstrap_servers``) and what was expected, as Starlette's config does, and
unknown keys are refused so that a typo in a hospital's file is caught rather than ignored.

Environment variables map onto the tree by splitting once after the section name:
``LABSENTINEL_DATABASE_URL`` → ``database.url``, ``LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS`` →
``kafka.bootstrap_servers``. Section names are therefore single words. A whole section is one
JSON object (``LABSENTINEL_ROUTING``), a channel one JSON object named after it
(``LABSENTINEL_CHANNELS_PAGER``), a list a JSON list (``LABSENTINEL_API_TOKENS='["t1"]'``).
Any other ``LABSENTINEL_*`` variable stops start-up (``environment_problems``).
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from service.runtime.auth_settings import AuthSettings
from service.runtime.environment import environment_problems
from service.runtime.http_settings import HttpSettings
from service.runtime.metrics_settings import MetricsSettings

ENV_PREFIX = "LABSENTINEL_"
DEFAULT_CONFIG_NAME = "labsentinel.toml"


class ConfigError(Exception):
    """A setting is missing, of the wrong type or out of range. The message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HospitalSettings(_Section):
    timezone: str = "UTC"
    name: str = "LabSentinel"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class PatientSettings(_Section):
    identifier_types: tuple[str, ...] = ("MR",)
    identifier_authorities: tuple[str, ...] = ()
    # Salt for the hashed patient identifiers written to logs. Set per site (env or secret
    # file); the default only keeps identifiers out of logs, it does not stop a dictionary
    # attack by someone who can read the code.
    log_hash_salt: SecretStr = SecretStr("labsentinel")


class DatabaseSettings(_Section):
    url: str = "sqlite:///labsentinel.db"
    pool_size: int = Field(default=5, ge=1, le=100)
    echo: bool = False
    # How long a database outage may last before the consumer gives up and exits non-zero
    # (0 = wait forever). While it lasts, consumption is paused; no message is skipped.
    outage_max_s: float = Field(default=0, ge=0)

    @field_validator("url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value


class KafkaSettings(_Section):
    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "labsentinel"
    client_id: str = "labsentinel"
    topics: tuple[str, ...] = ("hl7.oru", "hl7.rde")
    dead_letter_topic: str = "hl7.deadletter"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    max_batch_records: int = Field(default=1000, ge=1, le=100_000)
    fetch_timeout_ms: int = Field(default=500, ge=10, le=60_000)
    # How long the broker may hold a fetch waiting for data: bounds detection latency when the
    # feed is quiet (aiokafka's default is 500 ms).
    fetch_max_wait_ms: int = Field(default=100, ge=0, le=60_000)
    # Bounds on what the client prefetches: records sit decoded in memory until processed, so
    # these bound the daemon's memory (aiokafka's defaults are 50 MB and 1 MB).
    fetch_max_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    max_partition_fetch_bytes: int = Field(default=512 * 1024, ge=64 * 1024)
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    # A record larger than this is dead-lettered before it is decoded (also in replay).
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    @field_validator("topics")
    @classmethod
    def _some_topics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one topic is required")
        return value


class ThresholdSettings(_Section):
    unit: str
    warning: float
    high: float
    critical: float


class ClinicalSettings(_Section):
    drug_catalog: str = "drugs.toml"  # relative to the config file's folder
    lab_catalog: str = "labs.toml"
    iron_window_days: int = Field(default=28, ge=21, le=35)
    albumin_pairing_hours: int = Field(default=48, ge=0, le=168)
    double_trouble_hours: int = Field(default=72, ge=0, le=336)
    backfill_days: int = Field(default=7, ge=0, le=365)
    counted_statuses: tuple[str, ...] = ("F", "C", "U")
    parenteral_routes: tuple[str, ...] = ("IV", "IVP", "IVPB", "IVF", "INTRAVENOUS", "IVPUSH")
    # How far back a patient's history is loaded for evaluation: the longest antiresorptive
    # effect interval (zoledronic acid, 365 days) plus the iron window plus slack.
    history_days: int = Field(default=430, ge=60, le=3650)
    thresholds: dict[str, ThresholdSettings] = Field(default_factory=dict)
    # Trend rule: a drop of at least this fraction from the pre-iron baseline warns even above
    # the absolute thresholds, since a fall from a high baseline matters before it crosses one.
    trend_drop_fraction: float = Field(default=0.30, gt=0, lt=1)
    # Order-time advisory: latest phosphate/calcium looked up this many days before the dose;
    # an older value says too little about the patient now, so it counts as none.
    advisory_lookback_days: int = Field(default=30, ge=1, le=365)
    # An advisory whose interaction began longer ago than this when found goes to the worklist,
    # not to the pharmacy: its order-time check is long past (CLINICAL.md windows: backfill after
    # 7 days).
    advisory_late_days: int = Field(default=7, ge=0, le=365)

    @field_validator("thresholds")
    @classmethod
    def _ordered(cls, value: dict[str, ThresholdSettings]) -> dict[str, ThresholdSettings]:
        for analyte, t in value.items():
            if not t.critical < t.high < t.warning:
                raise ValueError(f"{analyte}: expected critical < high < warning")
        return value


class MonitoringSettings(_Section):
    """The monitoring plan of an at-risk iron episode and its reminder sweep.

    CLINICAL.md: "baseline, 1 week and 3 weeks after starting iron, then monthly for 2-3
    months". A baseline counts when drawn within ``baseline_days_before`` (30) days before
    the first dose: an older value may no longer describe the patient the iron is given to.
    """

    baseline_days_before: int = Field(default=30, ge=0, le=365)
    points_days: tuple[int, ...] = (7, 21)
    monthly_months: int = Field(default=3, ge=0, le=12)
    grace_days: int = Field(default=3, ge=0, le=30)
    # How often the reminder job runs (APScheduler interval job), seconds.
    sweep_interval_s: float = Field(default=300.0, gt=0, le=86_400)

    @field_validator("points_days")
    @classmethod
    def _positive_days(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(n <= 0 or n > 365 for n in value):
            raise ValueError("each day must be between 1 and 365")
        return tuple(sorted(set(value)))


class ChannelSettings(_Section):
    """One delivery channel. Keys beyond ``type`` and ``enabled`` go to the transport."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Literal["console", "jsonl", "webhook", "wctp", "smtp"]
    enabled: bool = True


class RoutingSettings(_Section):
    # Recipient of the audit channels below when paging is not wired (no routing file).
    default_recipients: tuple[str, ...] = ("pharmacy-on-call",)
    # Channels that receive every notification. `--pages-out` adds a jsonl channel.
    default_channels: tuple[str, ...] = ("console",)
    # Teams, routes, on-call schedules and escalation policies (alerts.routing): a TOML file
    # relative to the config file's folder (the shipped configs/routing.toml when not found).
    # Empty: no team routing (every notification goes to the default channels only).
    config: str = "routing.toml"


class PagingSettings(_Section):
    # How much patient identity a page sent over a paging channel (wctp, smtp, webhook)
    # carries: "mrn" (MRN and location, never a name: the default), "masked" (the last four
    # characters of the MRN and the location), "location" (the location only). The audit
    # channels (console, jsonl) always carry the MRN.
    page_identity: Literal["mrn", "masked", "location"] = "mrn"
    # How often the escalation job runs (APScheduler interval job), seconds.
    escalation_interval_s: float = Field(default=30.0, gt=0, le=3600)


class DispatcherSettings(_Section):
    poll_interval_s: float = Field(default=0.5, gt=0, le=60)
    batch_size: int = Field(default=100, ge=1, le=10_000)
    retry_initial_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    # After this long without success a delivery is marked failed (visible), never retried on.
    deadline_s: float = Field(default=3600.0, gt=0)
    lease_s: float = Field(default=60.0, gt=0)
    send_timeout_s: float = Field(default=30.0, gt=0)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


class ApiSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The address clinicians' phones reach: ack links in pages are built from it.
    base_url: str = "http://127.0.0.1:8080"
    # Bearer tokens accepted by the JSON API (set through LABSENTINEL_API_TOKENS as a JSON
    # list, or a secret file). Empty: the JSON API refuses every request.
    tokens: tuple[SecretStr, ...] = ()
    # HMAC key of the signed ack links. Unset: a random key per process (links then stop
    # working at restart — fine for the demo, never for production).
    ack_secret: SecretStr | None = None
    ack_link_ttl_hours: int = Field(default=12, ge=1, le=24 * 30)
    # Severities an ack link acknowledges without sign-in (others: sign in first).
    link_ack_without_signin: tuple[Literal["info", "warning", "high", "critical"], ...] = (
        "info",
        "warning",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        frozen=True,
    )

    hospital: HospitalSettings = HospitalSettings()
    patient: PatientSettings = PatientSettings()
    database: DatabaseSettings = DatabaseSettings()
    kafka: KafkaSettings = KafkaSettings()
    clinical: ClinicalSettings = ClinicalSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    routing: RoutingSettings = RoutingSettings()
    dispatcher: DispatcherSettings = DispatcherSettings()
    paging: PagingSettings = PagingSettings()
    logging: LoggingSettings = LoggingSettings()
    api: ApiSettings = ApiSettings()
    http: HttpSettings = HttpSettings()
    auth: AuthSettings = AuthSettings()
    metrics: MetricsSettings = MetricsSettings()

    # Where the TOML came from; relative catalog paths resolve against its folder.
    config_dir: str = ""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit values (CLI flags) > environment > TOML (passed as init kwargs by
        # load_settings, underneath the CLI overrides) > defaults.
        return (_CliOverrides(settings_cls), env_settings, init_settings, file_secret_settings)

    def resolve_path(self, name: str) -> Path:
        """A path from the config, relative to the config file's folder when not absolute."""
        path = Path(name)
        if path.is_absolute():
            return path
        candidate = Path(self.config_dir) / path if self.config_dir else path
        if candidate.exists():
            return candidate
        packaged = resources.files("configs").joinpath(name)
        return Path(str(packaged))


class _CliOverrides(PydanticBaseSettingsSource):
    """Values given on the command line; they outrank the environment."""

    overrides: dict[str, Any] = {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.overrides.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(type(self).overrides)


def default_config_path() -> Path:
    """The shipped configs/labsentinel.toml (inside the installed package)."""
    return Path(str(resources.files("configs").joinpath(DEFAULT_CONFIG_NAME)))


def load_settings(
    config_path: str | Path | None = None, overrides: dict[str, dict[str, Any]] | None = None
) -> Settings:
    """Read the TOML file (default: the shipped one), apply env and CLI overrides, validate.

    ``overrides`` are section → key → value, e.g. ``{"database": {"url": "sqlite:///x.db"}}``.
    Raises ConfigError naming the key on any problem; never returns a half-valid tree.
    """
    problems = environment_problems(os.environ, Settings, ENV_PREFIX)
    if problems:
        unknown = any(p.startswith("unknown") for p in problems)
        form = f"; each {ENV_PREFIX}* variable is {ENV_PREFIX}<SECTION>_<KEY>" if unknown else ""
        raise ConfigError(f"invalid configuration: {'; '.join(problems)}{form}")
    path = Path(config_path) if config_path else default_config_path()
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    data["config_dir"] = str(path.resolve().parent)
    _CliOverrides.overrides = _merge_cli(overrides or {})
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    except SettingsError as exc:  # environment_problems catches these first; this names the section
        raise ConfigError(f"invalid configuration: {exc}") from None
    finally:
        _CliOverrides.overrides = {}
    return settings


def _merge_cli(overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    # The CLI source replaces a whole section, so fill it from the env/TOML-free defaults
    # lazily: pydantic merges nested dicts from sources of lower priority for us.
    return {section: dict(values) for section, values in overrides.items() if values}


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(root)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling)"
        lines.append(f"config key '{key}': {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
