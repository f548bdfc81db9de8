"""A page says "given" only for a dose an administration (RAS^O17 RXA) confirms; a dose that
was only ordered (RDE^O11) is "ordered for" its date. On both databases, through the pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.notification import Notification
from alerts.render import render_text
from service.bootstrap import App, build_app
from service.ingest.pipeline import Incoming
from service.runtime.clock import MessageClock
from service.runtime.settings import load_settings
from tests.messages import DENOSUMAB, oru, rde

T0 = (datetime.now(UTC) - timedelta(days=40)).replace(microsecond=0)


def ras(mrn: str, order: str, given: datetime, status: str = "CP") -> bytes:
    stamp = f"{given:%Y%m%d%H%M%S}+0000"
    return "\r".join(
        [
            f"MSH|^~\\&|PHARM|GENERAL HOSPITAL|LABSENTINEL|GH|{stamp}||RAS^O17|RAS{order}|P|2.5.1",
            f"PID|1||{mrn}^^^GH^MR",
            f"ORC|RE|{order}|{order}F",
            f"RXA|0|1|{stamp}|{stamp}|1435169^Ferric carboxymaltose 750 mg/15 mL^RXNORM|750|mg"
            f"||||||||||||{status}",
            "RXR|IV",
        ]
    ).encode()


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[App]:
    settings = load_settings(
        overrides={
            "database": {"url": database_url},
            "routing": {"default_channels": []},
            "logging": {"format": "text"},
        }
    )
    built = build_app(settings, clock=MessageClock())
    try:
        yield built
    finally:
        built.close()


def page_for(app: App, mrn: str, *, administration: str | None) -> Notification:
    messages = [
        rde(mrn, T0 - timedelta(days=14), drug=DENOSUMAB, route="SC"),
        rde(mrn, T0, order=f"IRON{mrn}"),
    ]
    if administration is not None:
        messages.append(ras(mrn, f"IRON{mrn}", T0, administration))
    drawn = T0 + timedelta(days=14)
    messages.append(oru(mrn, drawn, value="1.5"))
    notifications = []
    for raw in messages:
        result = app.pipeline.process(Incoming(raw=raw, source="replay", topic="t"))
        notifications += [n for n in result.notifications if n.event == "alert"]
    (page,) = notifications
    return page


def test_an_ordered_dose_is_not_called_given(app: App) -> None:
    page = page_for(app, "MRNORDER1", administration=None)
    assert "iron_given" not in page.extra and "antiresorptive_given" not in page.extra
    text = render_text(page)
    assert f"ordered for {T0:%Y-%m-%d}" in text and "given" not in text


def test_an_administered_dose_is_given(app: App) -> None:
    page = page_for(app, "MRNGIVEN1", administration="CP")
    assert page.extra.get("iron_given") is True
    text = render_text(page)
    assert f"ferric carboxymaltose, given {T0:%Y-%m-%d}" in text
    # Only the iron's administration is on file: the antiresorptive stays "ordered for".
    (line,) = [x for x in text.splitlines() if x.startswith("Antiresorptive:")]
    assert "ordered for" in line and "given" not in line
    assert page.to_json()["iron_given"] is True  # receivers of the JSON learn it too
