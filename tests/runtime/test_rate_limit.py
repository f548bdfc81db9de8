"""Token buckets of the sign-in rate limit: a table of cases on an injected clock."""

from __future__ import annotations

import pytest

from service.runtime.rate_limit import TokenBuckets


def test_a_burst_is_allowed_then_refused_until_a_token_comes_back() -> None:
    buckets = TokenBuckets(capacity=3, refill_s=60)
    assert [buckets.take("10.0.0.1", now=0) for _ in range(4)] == [True, True, True, False]
    # The refusal spent nothing: one token is due one refill period later, not two.
    assert buckets.wait_s("10.0.0.1", now=0) == pytest.approx(60)
    assert buckets.wait_s("10.0.0.1", now=45) == pytest.approx(15)
    assert not buckets.take("10.0.0.1", now=59.9)
    assert buckets.take("10.0.0.1", now=60)
    assert not buckets.take("10.0.0.1", now=60)


def test_keys_are_independent() -> None:
    buckets = TokenBuckets(capacity=1, refill_s=60)
    assert buckets.take("a", now=0)
    assert not buckets.take("a", now=0)
    assert buckets.take("b", now=0)  # another address is not punished for the first one


def test_refill_never_exceeds_capacity() -> None:
    buckets = TokenBuckets(capacity=2, refill_s=1)
    assert buckets.take("a", now=0)
    # A day of quiet gives back two tokens, not 86,400.
    assert [buckets.take("a", now=86_400) for _ in range(3)] == [True, True, False]


def test_refund_gives_back_the_attempt_of_a_success() -> None:
    buckets = TokenBuckets(capacity=2, refill_s=60)
    for _ in range(10):  # ten good sign-ins in a row never lock anyone out
        assert buckets.take("a", now=0)
        buckets.refund("a", now=0)
    assert buckets.take("a", now=0) and buckets.take("a", now=0)
    assert not buckets.take("a", now=0)


def test_refund_is_capped_at_capacity() -> None:
    buckets = TokenBuckets(capacity=1, refill_s=60)
    buckets.refund("a", now=0)
    buckets.refund("a", now=0)
    assert buckets.take("a", now=0)
    assert not buckets.take("a", now=0)


def test_memory_is_bounded_by_max_keys_dropping_the_least_recent() -> None:
    buckets = TokenBuckets(capacity=1, refill_s=60, max_keys=100)
    for n in range(1000):  # an attacker rotating addresses
        buckets.take(f"10.0.{n // 256}.{n % 256}", now=0)
    assert len(buckets) == 100
    assert not buckets.take("10.0.3.231", now=0)  # the most recent keys are still counted


def test_a_clock_that_goes_back_refills_nothing() -> None:
    buckets = TokenBuckets(capacity=1, refill_s=60)
    assert buckets.take("a", now=100)
    assert not buckets.take("a", now=50)


@pytest.mark.parametrize(
    ("capacity", "refill_s", "max_keys"), [(0, 60, 10), (1, 0, 10), (1, 60, 0)]
)
def test_nonsense_parameters_are_refused(capacity: int, refill_s: float, max_keys: int) -> None:
    with pytest.raises(ValueError):
        TokenBuckets(capacity, refill_s, max_keys)
