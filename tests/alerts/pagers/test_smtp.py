"""SmtpPager against a real aiosmtpd server (and sockets that refuse or stay silent)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from alerts.pagers import Outcome, Pager, SmtpPager
from alerts.render import render_text
from tests.alerts.pagers.factories import LOCATION, MRN, make_notification
from tests.alerts.pagers.servers import SmtpServer, refused_port, silent_tcp_port


def body_of(msg: EmailMessage) -> str:
    return str(msg.get_content()).replace("\r\n", "\n").strip()


def pager_for(server: SmtpServer, **kwargs: object) -> SmtpPager:
    return SmtpPager(
        name="mail",
        host=server.host,
        port=server.port,
        sender="labsentinel@hospital.example",
        timeout_s=2,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_delivers_one_message(smtp_server: SmtpServer) -> None:
    pager = pager_for(smtp_server)
    assert isinstance(pager, Pager)
    n = make_notification()
    result = await pager.send(n, "endo-oncall@hospital.example")
    await pager.close()

    assert result.outcome is Outcome.DELIVERED
    ((rcpts, msg),) = smtp_server.handler.messages
    assert rcpts == ["endo-oncall@hospital.example"]
    assert msg["To"] == "endo-oncall@hospital.example"
    assert msg["From"] == "labsentinel@hospital.example"
    assert msg["Subject"] == "[LabSentinel] ALERT CRITICAL: phosphate <0.9 mg/dL"
    assert MRN not in msg["Subject"] and LOCATION not in msg["Subject"]
    assert msg["X-LabSentinel-Alert-Id"] == n.dedup_key
    assert msg["X-LabSentinel-Notification-Id"] == n.notification_id
    assert msg["Message-ID"].startswith(f"<{n.notification_id}.")
    assert msg["Message-ID"].endswith("@hospital.example>")
    assert msg["Importance"] == "high" and msg["Auto-Submitted"] == "auto-generated"
    assert body_of(msg) == render_text(n)


async def test_message_id_stable_per_delivery_distinct_per_recipient(
    smtp_server: SmtpServer,
) -> None:
    pager = pager_for(smtp_server)
    n = make_notification()
    for recipient in ("a@h.example", "a@h.example", "b@h.example"):
        assert (await pager.send(n, recipient)).outcome is Outcome.DELIVERED
    update = make_notification(notification_id="ntf-8c1f2a.update.2", event="update")
    await pager.send(update, "a@h.example")
    first, retry, other, later = (m for _, m in smtp_server.handler.messages)
    assert first["Message-ID"] == retry["Message-ID"] != other["Message-ID"]
    # every notice of one alert threads together
    assert first["References"] == later["References"]
    assert later["Message-ID"] != first["Message-ID"]


async def test_unsafe_notification_id_falls_back_to_a_hash(smtp_server: SmtpServer) -> None:
    pager = pager_for(smtp_server)
    await pager.send(make_notification(notification_id="id with <spaces>@x"), "a@h.example")
    msg_id = smtp_server.handler.messages[0][1]["Message-ID"]
    assert " " not in msg_id and msg_id.count("@") == 1 and msg_id.count("<") == 1


async def test_max_chars_for_email_to_pager_gateways(smtp_server: SmtpServer) -> None:
    pager = pager_for(smtp_server, max_chars=160)
    await pager.send(make_notification(), "4411@pager.example")
    body = body_of(smtp_server.handler.messages[0][1])
    assert len(body) <= 160 and body.startswith("ALERT CRITICAL: phosphate <0.9 mg/dL")


@pytest.mark.parametrize(
    ("stage", "reply", "outcome", "status_class"),
    [
        ("rcpt", "451 4.3.0 Try again later", Outcome.RETRYABLE, "4xx"),
        ("rcpt", "452 4.2.2 Mailbox full", Outcome.RETRYABLE, "4xx"),
        ("rcpt", "550 5.1.1 No such user", Outcome.FINAL, "5xx"),
        ("rcpt", "553 5.1.3 Bad address", Outcome.FINAL, "5xx"),
        ("data", "451 4.3.0 Local error", Outcome.RETRYABLE, "4xx"),
        ("data", "554 5.6.0 Content rejected", Outcome.FINAL, "5xx"),
    ],
)
async def test_smtp_reply_classification(
    smtp_server: SmtpServer, stage: str, reply: str, outcome: Outcome, status_class: str
) -> None:
    setattr(smtp_server.handler, f"{stage}_reply", reply)
    pager = pager_for(smtp_server)
    result = await pager.send(make_notification(), "endo-oncall@hospital.example")
    await pager.close()
    assert (result.outcome, result.status_class) == (outcome, status_class)
    assert result.detail.startswith(f"SMTP {reply[:3]}")
    assert "No such user" not in result.detail  # server text stays out of the detail
    assert smtp_server.handler.messages == []


async def test_silent_server_times_out_retryable() -> None:
    with silent_tcp_port() as port:
        pager = SmtpPager("mail", "127.0.0.1", port, "ls@h.example", timeout_s=0.3)
        result = await pager.send(make_notification(), "a@h.example")
    assert result.outcome is Outcome.RETRYABLE and result.status_class == "timeout"


async def test_refused_connection_is_retryable() -> None:
    with refused_port() as port:
        pager = SmtpPager("mail", "127.0.0.1", port, "ls@h.example", timeout_s=2)
        result = await pager.send(make_notification(), "a@h.example")
    assert result.outcome is Outcome.RETRYABLE and result.status_class == "network"


async def test_starttls_against_a_server_without_it_is_final(smtp_server: SmtpServer) -> None:
    pager = pager_for(smtp_server, starttls=True)
    result = await pager.send(make_notification(), "a@h.example")
    assert result.outcome is Outcome.FINAL and result.status_class == "config"
    assert smtp_server.handler.messages == []


async def test_header_injection_is_final_and_not_sent(smtp_server: SmtpServer) -> None:
    pager = pager_for(smtp_server)
    result = await pager.send(make_notification(dedup_key="dk\r\nBcc: x@evil"), "a@h.example")
    assert result.outcome is Outcome.FINAL and result.status_class == "encoding"
    assert smtp_server.handler.messages == []


def test_starttls_and_implicit_tls_together_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="starttls"):
        SmtpPager("mail", "h", 25, "ls@h.example", starttls=True, use_tls=True)
