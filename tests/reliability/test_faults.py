"""Can it lose a page? Faults injected into the real `labsentinel run` process.

Each test drives the daemon as a subprocess against a broker behind a TCP proxy (Tansu and
Apache Kafka, see ``--broker``; faults of the database or the pager run on Tansu alone) and a
private PostgreSQL cluster, with a feed of a few thousand messages that contains planted cases, and
audits the end state (service.tools.soak.Run.audit): every planted case paged, no notification
undelivered, repeated deliveries only with the same dedup key, no case paged twice under
different keys. CI numbers are small; `labsentinel soak` runs the same scenarios longer and
wrote the figures in tests/reliability/RESULTS.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.tools import soak

pytestmark = [pytest.mark.slow, pytest.mark.kafka]


def check(result: soak.ScenarioResult) -> None:
    # A scenario whose fault never reached the daemon proves nothing, whatever its audit says.
    assert result.injected > 0, f"no fault was injected: {result.row()}"
    audit = result.audit
    assert audit.ok, (result.row(), audit.details)
    assert audit.paged == audit.planted and audit.lost == 0 and audit.doubled == 0


def test_sigkill_at_random_moments_loses_nothing(proxied_broker, private_pg_url, tmp_path: Path):
    result = soak.scenario_sigkill(
        proxied_broker, private_pg_url, tmp_path, kills=10, messages=3000, seed=11
    )
    assert result.injected == 10
    check(result)


@pytest.mark.tansu_only("a database fault: the broker plays no part in it")
def test_database_outage_pauses_then_resumes(proxied_broker, private_pg, tmp_path: Path):
    # CI: at least 6 s instead of the soak command's 20 s. The outage lasts until the consumer
    # has logged its pause and /readyz has answered 503, however slow the machine.
    result = soak.scenario_database_outage(
        proxied_broker, private_pg, tmp_path, outage_s=6, messages=3000, seed=12
    )
    assert private_pg.running()
    check(result)


def test_broker_cut_then_reconnect(proxied_broker, private_pg_url, tmp_path: Path):
    # CI: at least 8 s instead of the soak command's 30 s. The cut lasts until the daemon has
    # tried to reconnect through the proxy and been refused.
    result = soak.scenario_broker_cut(
        proxied_broker, private_pg_url, tmp_path, cut_s=8, messages=3000, seed=13
    )
    check(result)
    assert result.notes.startswith("daemon stayed up"), result.notes


@pytest.mark.tansu_only("a pager fault: the broker plays no part in it")
def test_pager_failing_half_its_requests(proxied_broker, private_pg_url, tmp_path: Path):
    result = soak.scenario_flaky_pager(
        proxied_broker, private_pg_url, tmp_path, failures=8, messages=1500, seed=14
    )
    assert result.injected > 0, "the webhook never failed a request"
    check(result)


def test_two_instances_unkeyed_topics_page_exactly_once(
    proxied_broker, private_pg_url, tmp_path: Path
):
    result = soak.scenario_two_instances(
        proxied_broker, private_pg_url, tmp_path, messages=3000, seed=15
    )
    check(result)
    # Both instances did the work of the group (else this proves nothing about sharing).
    logs = [d for d in (tmp_path / "daemon-a.log", tmp_path / "daemon-b.log")]
    assert all("consumer started" in p.read_text() for p in logs)


def test_sigterm_during_a_burst(proxied_broker, private_pg_url, tmp_path: Path):
    result = soak.scenario_sigterm_burst(
        proxied_broker, private_pg_url, tmp_path, stops=2, messages=3000, seed=16
    )
    check(result)
