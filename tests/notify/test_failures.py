"""Delivery failures end visibly, reach the fallback route, and never hold up anyone else;
silences record without paging; `send-test-page` works against each transport."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from service.bootstrap import open_database
from service.cli.main import main
from service.db.models import Alert, AlertEvent, OutboxRow
from service.notify import metrics as paging_metrics
from service.notify.silences import add_silence
from service.tools.broker import free_port
from tests.alerts.pagers.servers import (
    HttpServer,
    Reply,
    Request,
    SmtpServer,
    WctpGateway,
    WebhookReceiver,
    parse_submit_request,
    wctp_failure,
    wctp_success,
)
from tests.messages import DENOSUMAB, oru, rde

from .helpers import (
    deliver,
    feed_start,
    outbox,
    paging_settings,
    planted_feed,
    replay,
    smtp,
    wctp,
    write_routing,
)


@pytest.fixture
def mail() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


class Flaky:
    """A WCTP gateway: per recipient, a scripted list of replies, then success."""

    def __init__(self, script: dict[str, list[Reply]] | None = None) -> None:
        self.script = script or {}
        self.default: list[Reply] = []
        self.accepted: list[tuple[float, str]] = []

    def __call__(self, request: Request) -> Reply:
        recipient = parse_submit_request(request.body)["recipientID"]
        queue = self.script.get(recipient, self.default)
        if queue:
            return queue.pop(0) if len(queue) > 1 or not queue[0].hang else queue[0]
        self.accepted.append((time.monotonic(), recipient))
        return Reply(body=wctp_success(), content_type="text/xml")


def pager_rows(app: Any) -> list[OutboxRow]:
    return [r for r in outbox(app) if r.channel == "pager"]


async def test_5xx_and_timeouts_are_retried_until_delivered(
    sqlite_url: str, tmp_path: Path, mail: SmtpServer
) -> None:
    flaky = Flaky()
    flaky.default = [Reply(status=503), Reply(status=502), Reply(hang=False, status=500)]
    with HttpServer(flaky) as server:
        settings = paging_settings(
            sqlite_url,
            write_routing(tmp_path / "routing.toml"),
            {"pager": wctp(server.url), "email": smtp(mail.host, mail.port)},
        )
        app, _ = replay(settings, (r.value for r in planted_feed().records))
        try:
            await deliver(app)
            rows = pager_rows(app)
            assert rows and all(r.status == "sent" for r in rows)
            assert max(r.attempts for r in rows) >= 2  # the first ones met the 5xx
        finally:
            await app.dispatcher.close()
            app.close()


async def test_final_failure_is_visible_and_goes_to_the_fallback(
    sqlite_url: str, tmp_path: Path, mail: SmtpServer
) -> None:
    gateway = WctpGateway()
    gateway.answer(wctp_failure("403", "invalid recipient"))  # final (PAGING.md)
    with HttpServer(gateway) as server:
        settings = paging_settings(
            sqlite_url,
            write_routing(tmp_path / "routing.toml"),
            {"pager": wctp(server.url), "email": smtp(mail.host, mail.port)},
        )
        before = paging_metrics.fallbacks.labels("pager")._value.get()
        app, _ = replay(settings, (r.value for r in planted_feed().records))
        try:
            await deliver(app)
            rows = outbox(app)
            failed = [r for r in rows if r.channel == "pager"]
            assert failed and all(r.status == "failed" and r.attempts == 1 for r in failed)
            fallback = [r for r in rows if r.fallback]
            # the fallback team's on-call and its address, on the fallback channel (email)
            pharmacy = {"pharmacy-1@hospital.test", "pharmacy@hospital.test"}
            assert fallback and all(
                r.channel == "email" and r.recipient in pharmacy and r.status == "sent"
                for r in fallback
            )
            assert {r for rcpt, _ in mail.handler.messages for r in rcpt} == pharmacy
            assert paging_metrics.fallbacks.labels("pager")._value.get() > before
            with Session(app.engine) as session:
                alerts = session.exec(select(Alert).where(Alert.status == "open")).all()
                paged = [a for a in alerts if a.severity in ("high", "critical")]
                assert paged and all(a.delivery_failed_at is not None for a in paged)
                events = session.exec(
                    select(AlertEvent).where(AlertEvent.kind == "delivery-failed")
                ).all()
                assert {e.alert_id for e in events} >= {a.id for a in paged}
        finally:
            await app.dispatcher.close()
            app.close()


@pytest.mark.slow
async def test_one_hanging_recipient_does_not_delay_the_others(
    sqlite_url: str, tmp_path: Path, mail: SmtpServer
) -> None:
    flaky = Flaky()
    with HttpServer(flaky) as server:
        settings = paging_settings(
            sqlite_url,
            write_routing(tmp_path / "routing.toml"),
            {"pager": wctp(server.url), "email": smtp(mail.host, mail.port)},
        )
        app, _ = replay(settings, (r.value for r in planted_feed().records))
        try:
            recipients = sorted({r.recipient for r in pager_rows(app)})
            assert len(recipients) >= 2, recipients
            stuck = recipients[0]
            flaky.script[stuck] = [Reply(hang=True)]
            started = time.monotonic()
            await app.dispatcher.dispatch_due()  # one round: everyone concurrently
            by_recipient = {r.recipient: r.status for r in pager_rows(app)}
            assert by_recipient[stuck] == "pending"  # timed out, will retry
            assert all(s == "sent" for r, s in by_recipient.items() if r != stuck)
            # the others were accepted long before the stuck one's timeout (1 s) ended
            assert all(at - started < 0.9 for at, r in flaky.accepted if r != stuck)
            flaky.script[stuck] = []  # the gateway recovers
            server.responder = flaky
            await deliver(app)
            assert all(r.status == "sent" for r in pager_rows(app))
        finally:
            await app.dispatcher.close()
            app.close()


async def test_silenced_unit_records_but_does_not_page(
    sqlite_url: str, tmp_path: Path, mail: SmtpServer
) -> None:
    gateway = WctpGateway()
    with HttpServer(gateway) as server:
        settings = paging_settings(
            sqlite_url,
            write_routing(tmp_path / "routing.toml"),
            {"pager": wctp(server.url), "email": smtp(mail.host, mail.port)},
        )
        engine = open_database(settings)
        start = feed_start() - timedelta(days=1)
        for unit in ("ICU", "4W", "5N", "3E", "6S", "ONC"):
            add_silence(
                engine,
                author="pharmacist",
                reason="unit-wide protocol review",
                now=start,
                expires_at=start + timedelta(days=60),
                unit=unit,
            )
        engine.dispose()
        app, _ = replay(settings, (r.value for r in planted_feed().records))
        try:
            await deliver(app)
            assert gateway.submitted == []
            with Session(app.engine) as session:
                alerts = session.exec(select(Alert)).all()
                assert alerts and all(a.silence_id is not None for a in alerts)
                assert all(a.escalation_state == "" for a in alerts)
                silenced = session.exec(
                    select(AlertEvent).where(AlertEvent.kind == "silenced")
                ).all()
                assert silenced
        finally:
            await app.dispatcher.close()
            app.close()


@pytest.mark.slow
async def test_refused_connections_are_retried_until_the_gateway_is_back(
    sqlite_url: str, tmp_path: Path, mail: SmtpServer
) -> None:
    port = free_port()  # nothing listens yet: every attempt is refused
    settings = paging_settings(
        sqlite_url,
        write_routing(tmp_path / "routing.toml"),
        {"pager": wctp(f"http://127.0.0.1:{port}"), "email": smtp(mail.host, mail.port)},
        deadline_s=60.0,
    )
    app, _ = replay(settings, (r.value for r in planted_feed().records))
    try:
        for _ in range(4):
            await app.dispatcher.dispatch_due()
            await asyncio.sleep(0.25)
        refused = pager_rows(app)
        assert refused and all(r.status == "pending" and r.attempts >= 1 for r in refused)
        gateway = WctpGateway()
        with HttpServer(gateway, port=port):  # the gateway comes back on the same address
            await deliver(app)
        assert all(r.status == "sent" for r in pager_rows(app))
        assert len(gateway.submitted) == len(refused)
    finally:
        await app.dispatcher.close()
        app.close()


def test_a_silenced_alert_that_resolves_still_records_its_resolution(
    sqlite_url: str, tmp_path: Path, mail: SmtpServer
) -> None:
    # The pager is never called: the unit is silenced.
    channels = {
        "pager": wctp(f"http://127.0.0.1:{free_port()}"),
        "email": smtp(mail.host, mail.port),
    }
    settings = paging_settings(sqlite_url, write_routing(tmp_path / "routing.toml"), channels)
    start = feed_start()
    iron, day14 = start + timedelta(days=14), start + timedelta(days=28)
    engine = open_database(settings)
    add_silence(
        engine,
        author="pharmacist",
        reason="patient on comfort care",
        now=start,
        expires_at=start + timedelta(days=60),
        unit="4W",
    )
    engine.dispose()
    messages = [
        rde("MRN00000042", start, drug=DENOSUMAB, route="SC"),
        rde("MRN00000042", iron),
        oru("MRN00000042", day14, value="1.4", order="S1"),
        # The result is corrected to a normal value: the alert resolves, silenced or not.
        oru(
            "MRN00000042",
            day14,
            value="3.4",
            order="S1",
            status="C",
            sent=day14 + timedelta(hours=2),
        ),
    ]
    app, _ = replay(settings, messages)
    try:
        with Session(app.engine) as session:
            (alert,) = session.exec(select(Alert)).all()
            assert alert.silence_id is not None and alert.status == "resolved"
            kinds = [e.kind for e in session.exec(select(AlertEvent)).all()]
        assert "silenced" in kinds and "resolved" in kinds
    finally:
        app.close()


def test_send_test_page_each_transport(
    tmp_path: Path, mail: SmtpServer, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    gateway = WctpGateway()
    hook = WebhookReceiver(secret="hook-secret")
    with HttpServer(gateway) as wctp_server, HttpServer(hook) as hook_server:
        extra = (
            '[people.all-1]\ncontacts = { pager = "ALL-1", email = "all-1@hospital.test", '
            'hook = "all-1", log = "all-1" }\n'
            '[teams.all]\npolicy = "fast"\npage_channels = ["pager", "email", "hook", "log"]\n'
            'tiers = [{ members = ["all-1"], start = "2024-01-01" }]\n'
        )
        routing = write_routing(tmp_path / "routing.toml", extra_team=extra)
        channels = {
            "pager": wctp(wctp_server.url),
            "email": smtp(mail.host, mail.port),
            "hook": {"type": "webhook", "url": hook_server.url, "secret": "hook-secret"},
            "log": {"type": "jsonl", "path": str(tmp_path / "pages.jsonl")},
        }
        monkeypatch.setenv("LABSENTINEL_CHANNELS", json.dumps(channels))
        monkeypatch.setenv("LABSENTINEL_ROUTING", json.dumps({"config": str(routing)}))
        monkeypatch.setenv("LABSENTINEL_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
        assert main(["send-test-page", "all"]) == 0
        out = capsys.readouterr().out
        for channel in ("pager", "email", "hook", "log"):
            assert f"{channel} -> " in out and "delivered" in out
        assert [s["recipientID"] for s in gateway.submitted] == ["ALL-1"]
        assert mail.handler.messages[0][0] == ["all-1@hospital.test"]
        assert hook.verified == [True]
        assert json.loads((tmp_path / "pages.jsonl").read_text())["rule"] == "test-page"
        assert main(["oncall", "show", "all", "--at", "2024-06-01T09:00"]) == 0
        assert "tier 1: all-1" in capsys.readouterr().out
        assert main(["send-test-page", "nobody"]) == 1
