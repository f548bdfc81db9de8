"""Per-key token buckets (sign-in attempts per address, per account). Pure: ``now`` is a parameter.

A bucket holds up to ``capacity`` tokens and gains one every ``refill_s`` seconds; an attempt
spends one, and an attempt that finds the bucket empty is refused with the seconds until the
next token. A successful sign-in gives its token back (``refund``), so only failures count, as
OWASP's Authentication Cheat Sheet advises ("Login Throttling").

Written here rather than taken from ``limits`` (the library behind Flask-Limiter and slowapi):
its in-memory storage reads the wall clock itself and expires keys from a timer thread, so its
behaviour could only be tested by sleeping; this is forty lines with an injectable clock.

Memory is bounded: at most ``max_keys`` buckets are kept; the least recently used is dropped
first (an address that has not tried for longest). Not thread-safe: one event loop uses it.
"""

from __future__ import annotations

from collections import OrderedDict


class TokenBuckets:
    def __init__(self, capacity: int, refill_s: float, max_keys: int = 10_000) -> None:
        if capacity < 1 or refill_s <= 0 or max_keys < 1:
            raise ValueError("capacity and max_keys must be >= 1 and refill_s > 0")
        self.capacity = capacity
        self.refill_s = refill_s
        self.max_keys = max_keys
        # key -> (tokens, time of that count)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.capacity), now))
        elapsed = max(0.0, now - at)
        return min(float(self.capacity), tokens + elapsed / self.refill_s)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    def wait_s(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again: 0 when it may now. Spends nothing."""
        level = self._level(key, now)
        return 0.0 if level >= 1 else (1 - level) * self.refill_s

    def take(self, key: str, now: float) -> bool:
        """Spend one token of ``key``: True when there was one, False (nothing spent) if not."""
        level = self._level(key, now)
        if level < 1:
            return False
        self._store(key, level - 1, now)
        return True

    def refund(self, key: str, now: float) -> None:
        """Give back one token (the attempt succeeded); never above ``capacity``."""
        self._store(key, min(float(self.capacity), self._level(key, now) + 1), now)

    def __len__(self) -> int:
        return len(self._buckets)
