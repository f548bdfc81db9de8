"""``labsentinel check-config --connect``: reach everything the daemon needs, page nobody.

One check per line, ``ok`` or ``failed`` with a plain reason:

- database: a connection and ``SELECT 1``; the schema revision against the newest migration
  (a database that is behind is a failure: the daemon would migrate it at start, and an
  operator should know before). A SQLite file that does not exist is never created.
- broker: a metadata request to ``kafka.bootstrap_servers`` with the configured TLS and SASL
  settings, and whether the configured topics exist.
- each enabled channel, without sending anything: webhook — TCP (+TLS) and a ``HEAD`` of its
  URL (any HTTP answer means reachable); WCTP — TCP (+TLS) to the gateway; SMTP — EHLO,
  STARTTLS and login when configured, NOOP, QUIT. Console and JSON-lines are local.

Reasons never quote a password or a URL's query (which may carry a token): host and port
only. Every check is bounded by ``timeout_s``; each blocks for at most about that long.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from service.runtime.settings import ChannelSettings, Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{self.name:<30} {'ok' if self.ok else 'failed'}: {self.detail}"


def run_checks(settings: Settings, timeout_s: float = 5.0) -> list[Check]:
    """Database, broker, then each enabled channel in name order."""
    checks = [
        _guard("database", lambda: check_database(settings)),
        _guard("broker", lambda: check_broker(settings, timeout_s)),
    ]
    for name, channel in sorted(settings.channels.items()):
        if channel.enabled:
            label = f"channel {name} ({channel.type})"
            checks.append(
                _guard(label, lambda ch=channel: check_channel(ch, timeout_s))  # type: ignore[misc]
            )
    return checks


def _guard(name: str, check: Callable[[], tuple[bool, str]]) -> Check:
    """Run one check; any exception is its failure, described without its message (driver
    and library messages can quote statements, credentials or URLs)."""
    try:
        ok, detail = check()
    except Exception as exc:
        ok, detail = False, describe(exc)
    return Check(name, ok, detail)


def describe(exc: BaseException) -> str:
    """A plain, secret-free reason for a network failure."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout | asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or 'unknown reason'})"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"SMTP login refused ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPException):
        return f"SMTP error ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


def check_database(settings: Settings) -> tuple[bool, str]:
    from sqlalchemy import text

    from service.cli.failures import DatabaseUnreachable, require_sqlite_database
    from service.db.engine import make_engine
    from service.db.migrate import current_revision, head_revision

    try:
        require_sqlite_database(settings, may_create=False)
    except DatabaseUnreachable as exc:
        return False, str(exc).removeprefix("database unreachable: ")
    engine = make_engine(settings.database.url, pool_size=1)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current, head = current_revision(engine), head_revision()
    except Exception as exc:
        return False, _database_reason(exc)
    finally:
        engine.dispose()
    where = _database_where(settings.database.url)
    if current != head:
        return False, (
            f"{where} answers, but its schema is at {current or 'no revision'} and the newest "
            f"is {head} (`labsentinel db upgrade`)"
        )
    return True, f"{where} answers; schema at the newest revision ({head})"


def _database_where(url: str) -> str:
    from sqlalchemy.engine import make_url

    from service.db.engine import is_sqlite, normalise_url

    parsed = make_url(normalise_url(url))
    if is_sqlite(url):
        return f"SQLite {parsed.database}"
    return f"PostgreSQL {parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"


def _database_reason(exc: BaseException) -> str:
    # The driver's own text can quote the statement; its original exception type is enough
    # with a few well-known cases spelled out.
    origin = getattr(exc, "orig", None) or exc
    message = str(origin).lower()
    for needle, reason in (
        ("connection refused", "connection refused"),
        ("timeout expired", "timed out"),
        ("does not exist", "the database does not exist"),
        ("password authentication failed", "password refused"),
        ("no pg_hba.conf entry", "the server refuses this client (pg_hba.conf)"),
        ("could not translate host name", "host name not found"),
    ):
        if needle in message:
            return reason
    return type(origin).__name__


def check_broker(settings: Settings, timeout_s: float) -> tuple[bool, str]:
    return asyncio.run(_broker(settings, timeout_s))


async def _broker(settings: Settings, timeout_s: float) -> tuple[bool, str]:
    from aiokafka import AIOKafkaClient

    from service.ingest.consumer import kafka_options

    kafka = settings.kafka
    timeout_ms = int(timeout_s * 1000)
    client = AIOKafkaClient(
        **kafka_options(kafka), request_timeout_ms=timeout_ms, metadata_max_age_ms=timeout_ms
    )
    where = kafka.bootstrap_servers
    # aiokafka logs each refused connection as an error; this line's reason says it once.
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        metadata = await asyncio.wait_for(client.fetch_all_metadata(), timeout_s)
    except Exception as exc:
        return False, f"{where}: {_kafka_reason(exc)}"
    finally:
        await client.close()
        quiet.setLevel(level)
    brokers = len(metadata.brokers())
    wanted = (*kafka.topics, kafka.dead_letter_topic)
    missing = [t for t in wanted if t not in metadata.topics()]
    if missing:
        return False, f"{where} answers ({brokers} brokers) but has no topic {', '.join(missing)}"
    return True, f"{where} answers ({brokers} brokers); topics {', '.join(wanted)} exist"


def _kafka_reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timed out"
    if "Connection" in name:
        return "no broker answers (connection failed)"
    if "Authentication" in name or "Sasl" in name or "SASL" in name:
        return "authentication refused"
    return describe(exc)


def check_channel(channel: ChannelSettings, timeout_s: float) -> tuple[bool, str]:
    options: dict[str, Any] = dict(channel.model_extra or {})
    timeout_s = min(float(options.get("timeout_s", timeout_s)), timeout_s)
    if channel.type in ("console", "jsonl"):
        return True, "local output, nothing to reach"
    if channel.type == "smtp":
        return _smtp(options, timeout_s)
    url = str(options.get("url", ""))
    host, port, tls = _endpoint(url)
    _connect(host, port, tls, timeout_s)
    where = f"{host}:{port}{' (TLS)' if tls else ''}"
    if channel.type == "wctp":
        return True, f"{where} accepts connections; nothing sent"
    import httpx

    response = httpx.request("HEAD", url, timeout=timeout_s, follow_redirects=False)
    return True, f"{where} answers HEAD with HTTP {response.status_code}; nothing sent"


def _endpoint(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("no http(s) url configured")
    tls = parts.scheme == "https"
    return parts.hostname, parts.port or (443 if tls else 80), tls


def _connect(host: str, port: int, tls: bool, timeout_s: float) -> None:
    """TCP, then a TLS handshake with the system's trust store when ``tls``."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        if tls:
            context = ssl.create_default_context()
            with context.wrap_socket(sock, server_hostname=host):
                pass


def _smtp(options: dict[str, Any], timeout_s: float) -> tuple[bool, str]:
    host, port = str(options.get("host", "")), int(options.get("port", 25))
    use_tls, starttls = bool(options.get("use_tls")), bool(options.get("starttls"))
    context = ssl.create_default_context()
    server: smtplib.SMTP
    if use_tls:
        server = smtplib.SMTP_SSL(host, port, timeout=timeout_s, context=context)
    else:
        server = smtplib.SMTP(host, port, timeout=timeout_s)
    steps = ["EHLO"]
    try:
        server.ehlo()
        if starttls:
            server.starttls(context=context)
            server.ehlo()
            steps.append("STARTTLS")
        if options.get("username"):
            server.login(str(options["username"]), str(options.get("password") or ""))
            steps.append("login")
        code, _ = server.noop()
        if code != 250:
            return False, f"{host}:{port} answers NOOP with {code}"
        steps.append("NOOP")
    finally:
        try:
            server.quit()
        except smtplib.SMTPException:
            server.close()
    return True, f"{host}:{port} {', '.join(steps)} ok; nothing sent"
