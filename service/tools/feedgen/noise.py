"""The noise of a real feed: duplicates re-delivered a little later, and garbage records that
must be dead-lettered. Deterministic for a given ``random.Random``."""

from __future__ import annotations

import random

from service.tools.feedgen.model import FeedRecord

DUPLICATE_REACH = 150  # a duplicate re-appears 1..150 records after its original


def garbage(rng: random.Random, sample: bytes | None) -> bytes:
    """Junk that must be dead-lettered. Never contains CR, LF or MLLP framing bytes."""
    choice = rng.randrange(4)
    if choice == 0 and sample is not None:
        # A message cut inside MSH, before MSH-9 (message type) and MSH-10 (control id).
        header = sample.split(b"\r", 1)[0]
        cut = header.index(b"|", 20)  # after MSH-3, before MSH-9
        return header[: rng.randrange(12, cut)]
    if choice == 1:
        allowed = bytes(b for b in range(256) if b not in (0x0A, 0x0D, 0x0B, 0x1C))
        return bytes(rng.choice(allowed) for _ in range(rng.randrange(8, 120)))
    if choice == 2:
        return b'{"resourceType": "Observation", "status": "final", "note": "not HL7 v2"}'
    letters = "abcdefghijklmnopqrstuvwxyz ,.;:-"
    return ("".join(rng.choice(letters) for _ in range(rng.randrange(10, 200)))).encode()


def with_noise(
    rng: random.Random,
    primary: list[FeedRecord],
    n_dup: int,
    n_garbage: int,
    topics: tuple[str, str],
) -> list[FeedRecord]:
    """Feed order: the sorted records, with duplicates re-emitted a little later and garbage."""
    n = len(primary)
    extras: dict[int, list[FeedRecord]] = {}
    if n:
        sources = rng.sample(range(n), n_dup) if n_dup <= n else rng.choices(range(n), k=n_dup)
        for i in sources:
            original = primary[i]
            copy = FeedRecord(original.topic, original.key, original.value, "duplicate")
            at = min(n - 1, i + rng.randint(1, DUPLICATE_REACH))
            extras.setdefault(at, []).append(copy)
    sample = next((r.value for r in primary if r.kind.startswith("oru")), None)
    for _ in range(n_garbage):
        topic = topics[0] if rng.random() < 0.8 else topics[1]
        junk = FeedRecord(topic, None, garbage(rng, sample), "garbage")
        extras.setdefault(rng.randrange(n) if n else -1, []).append(junk)
    out: list[FeedRecord] = extras.get(-1, [])
    for i, record in enumerate(primary):
        out.append(record)
        out.extend(extras.get(i, ()))
    return out
