"""`labsentinel bench` end to end on a small feed: it must find what it planted.

No figure is asserted (speed is measured by the command, never by a test); what is checked is
that the bench's own bookkeeping holds: every planted case detected, in the throughput run
and in the paced latency run, so that a figure can never be reported over a run that paged
nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.tools.bench import run_bench
from service.tools.broker import EmbeddedBroker
from service.tools.kafka import ApacheKafka

pytestmark = [pytest.mark.slow, pytest.mark.kafka]


def test_bench_detects_every_planted_case(
    broker: EmbeddedBroker | ApacheKafka, tmp_path: Path
) -> None:
    result = run_bench(
        messages=3000,
        patients=300,
        planted=4,
        database_url=f"sqlite:///{tmp_path / 'bench.db'}",
        rate=1000,
        bootstrap_servers=broker.bootstrap_servers,
    )
    assert result["planted"] == 4 and result["detected"] == 4
    # The paced run plants its own cases; each must give a latency sample (a page traced
    # back to the record that caused it).
    assert result["latency_planted"] > 0
    assert result["latency_samples"] == result["latency_planted"]
