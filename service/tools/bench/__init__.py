"""`labsentinel bench`: throughput and detection latency of the real daemon, one JSON line.

1. Generates the synthetic hospital feed (service.tools.feedgen) and produces it to fresh
   topics on the broker (the embedded Tansu by default, or ``--bootstrap-servers``).
2. Measures a plain aiokafka consume of the same topics (the ceiling: ``raw_consume``).
3. Runs the real daemon (consumer → pipeline → outbox → dispatcher) over the feed and measures
   first fetch to last commit (``msgs_per_s``).
4. With ``--rate N``, a second, paced run produces the planted cases' messages at N msg/s
   while the daemon runs, and measures detection latency: record produced → page handed to
   the transport (p50/p99).

Modules: ``recording`` (the recording transport and a run's settings), ``measure`` (the
ceiling, throughput, detection, latency), ``instances`` (daemon processes in one group),
``seed`` (stored history in SQL), ``run`` (the whole bench in order). The last line printed
is a JSON object; earlier lines are progress for a human.
"""

from __future__ import annotations

from service.tools.bench.recording import RecordingPager
from service.tools.bench.run import main_json, run_bench
from service.tools.bench.seed import seed_results

__all__ = ["RecordingPager", "main_json", "run_bench", "seed_results"]
