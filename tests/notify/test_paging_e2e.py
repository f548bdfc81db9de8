"""Issue #7 "done means": a replay of planted cases with a real WCTP gateway and SMTP server.

Each page reaches the right team's on-call; an unacknowledged critical page escalates to
tier 2 after its timeout (``run_escalations`` driven with explicit times); an ack with a reason
through the signed link stops another; a phosphate replacement order stops a third; every step
is in the alert's history and in metrics; a restart neither loses nor repeats a step.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from alerts.identity import patient_key, split_patient_key
from alerts.pagers.wctp import message_id
from service.db.models import Alert, NotificationRow, Patient
from service.ingest.pipeline import Incoming
from service.notify import metrics as paging_metrics
from service.notify.ack_links import ack_secret
from service.notify.ack_tokens import verify_ack_token
from service.notify.acknowledge import acknowledge
from service.notify.escalation import paging_for, run_escalations
from service.notify.history import alert_history
from service.notify.outbox import notification_id
from service.runtime import metrics
from tests.alerts.pagers.servers import HttpServer, SmtpServer, WctpGateway

from .helpers import (
    corrective_order,
    deliver,
    expected_team,
    paging_settings,
    payload,
    planted_feed,
    replay,
    smtp,
    wctp,
    write_routing,
)


@pytest.fixture
def gateway() -> Iterator[tuple[HttpServer, WctpGateway]]:
    wctp_gateway = WctpGateway()
    with HttpServer(wctp_gateway) as server:
        yield server, wctp_gateway


@pytest.fixture
def mail() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def counter(metric: Any, *labels: str) -> float:
    return metric.labels(*labels)._value.get()


def submitted_to(gw: WctpGateway, nid: str, recipient: str) -> bool:
    wanted = message_id(nid, recipient)
    return any(s["messageID"] == wanted and s["recipientID"] == recipient for s in gw.submitted)


@pytest.mark.slow
async def test_replay_routes_escalates_acks_and_stops(
    database_url: str, tmp_path: Path, gateway: Any, mail: SmtpServer
) -> None:
    server, gw = gateway
    routing = write_routing(tmp_path / "routing.toml")
    settings = paging_settings(
        database_url,
        routing,
        {"pager": wctp(server.url), "email": smtp(mail.host, mail.port)},
    )
    feed = planted_feed()
    app, clock = replay(settings, (r.value for r in feed.records))
    try:
        await deliver(app)
        with Session(app.engine) as session:
            alerts = {
                (a.patient_id, a.analyte): a
                for a in session.exec(select(Alert).where(Alert.status == "open")).all()
            }
            patients = {p.patient_id: p for p in session.exec(select(Patient)).all()}
            notifications = session.exec(select(NotificationRow)).all()

        # 1. Every planted case paged the on-call of the team its ward/service routes to.
        paged = []
        for case in feed.planted:
            key = patient_key(case.patient_id, "GH")  # the feed's MRNs are GH's
            alert = alerts[(key, case.analyte)]
            patient = patients[key]
            team = expected_team(patient.location, patient.service)
            assert alert.team == team, case.description
            pages = [
                n
                for n in notifications
                if n.alert_id == alert.id
                and n.event in ("alert", "update")
                and n.severity in ("high", "critical")
            ]
            assert pages, case.description
            for page in pages:
                doc = payload(page)
                assert doc["recipients"] == [f"{team}-1"]
                assert doc["ack_url"].startswith("https://ls.hospital.test/ack/")
                assert submitted_to(gw, page.notification_id, f"{team}-1"), case.description
            paged.append(alert)
        assert counter(metrics.deliveries, "pager", "delivered", "2xx") >= len(paged) or (
            counter(metrics.deliveries, "pager", "delivered", "ok") >= len(paged)
        )

        critical = [a for a in paged if a.severity == "critical"]
        high = [a for a in paged if a.severity == "high" and a.analyte == "phosphate"]
        assert len(critical) >= 2 and high, [(a.severity, a.analyte) for a in paged]
        escalated, acked = critical[0], critical[1]
        corrected = high[0]

        # 2. An ack with a reason through the signed link (what the API's link handler does).
        with Session(app.engine) as session:
            link = payload(
                session.exec(
                    select(NotificationRow).where(NotificationRow.alert_id == acked.id)
                ).first()
            )["ack_url"]
        token = link.rsplit("/", 1)[1]
        claim = verify_ack_token(
            ack_secret(settings), token, datetime.now(UTC), public_id=acked.public_id
        )
        assert claim.public_id == acked.public_id
        acks_before = counter(paging_metrics.acks, "iv-phosphate", "link")
        result = acknowledge(
            app.engine,
            acked.id,
            who="dr.ng",
            action="iv-phosphate",
            note="20 mmol K-phos started",
            now=acked.paged_at + timedelta(minutes=3),
            source="link",
        )
        assert not result.already_acknowledged
        again = acknowledge(
            app.engine,
            acked.id,
            who="someone-else",
            action="not-relevant",
            note="",
            now=acked.paged_at + timedelta(minutes=4),
            source="api",
        )
        assert again.already_acknowledged and again.acked_by == "dr.ng"
        assert counter(paging_metrics.acks, "iv-phosphate", "link") == acks_before + 1

        # 3. Phosphate replacement ordered after the high alert.
        order_at = corrected.paged_at + timedelta(minutes=5)
        raw = corrective_order(
            feed, split_patient_key(corrected.patient_id)[0], order_at, "KPHOS0001"
        )
        app.pipeline.process(Incoming(raw=raw, source="replay", topic="test"))

        # 4. Time passes (message clock): critical timeout (10 min) and high timeout (30 min).
        paging = paging_for(settings)
        esc_before = counter(paging_metrics.escalations, "critical", "escalate")
        now = max(a.paged_at for a in paged) + timedelta(minutes=31)
        report = run_escalations(app.engine, settings, now, paging=paging)
        stepped = {alert_id for alert_id, _, _ in report.escalated}
        assert escalated.id in stepped
        assert acked.id not in stepped
        assert corrected.id not in stepped and (corrected.id, "corrective") in report.stopped
        assert counter(paging_metrics.escalations, "critical", "escalate") >= esc_before + 1
        await deliver(app)

        team = escalated.team
        escalation_nid = notification_id(escalated.public_id, "escalation", 1)
        assert submitted_to(gw, escalation_nid, f"{team}-2")
        ack_nid = notification_id(acked.public_id, "acknowledged", acked.notification_seq + 1)
        assert submitted_to(gw, ack_nid, f"{acked.team}-1")  # the acknowledged notice

        # 5. Re-running (or a restart: fresh paging config) repeats no step.
        sent = len(gw.submitted)
        again_report = run_escalations(app.engine, settings, now)
        assert escalated.id not in {a for a, _, _ in again_report.escalated}
        await deliver(app)
        assert len(gw.submitted) == sent

        with Session(app.engine) as session:
            row = session.get(Alert, escalated.id)
            assert row.escalation_tier == 2 and row.escalation_step == 1
            fixed = session.get(Alert, corrected.id)
            assert fixed.corrective_drug == "potassium_phosphate"
            assert fixed.escalation_state == "stopped" and fixed.stop_reason == "corrective"
            owned = session.get(Alert, acked.id)
            assert owned.ack_action == "iv-phosphate" and owned.acked_by == "dr.ng"

        # 6. Every step is in the history.
        kinds = {e.kind for e in alert_history(app.engine, escalated.id)}
        assert {"created", "notification", "delivery", "attempt", "escalation"} <= kinds
        ack_history = alert_history(app.engine, acked.id)
        ack_entry = next(e for e in ack_history if e.kind == "acknowledged")
        assert ack_entry.detail["note"] == "20 mmol K-phos started"
        assert ack_entry.detail["source"] == "link"
        assert "corrective" in {e.kind for e in alert_history(app.engine, corrected.id)}
        del clock
    finally:
        await app.dispatcher.close()
        app.close()
