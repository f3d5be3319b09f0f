import pytest

from gateway import edge
from gateway.edge import RateLimiter, TooManyRequests


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(edge.time, "monotonic", clock)
    return clock


def test_a_burst_is_allowed_then_refused_with_the_wait(clock):
    limiter = RateLimiter(per_minute=60, burst=3)
    for _ in range(3):
        limiter.check("user:a")
    with pytest.raises(TooManyRequests) as refused:
        limiter.check("user:a")
    assert refused.value.response_headers() == {"Retry-After": "1"}
    assert refused.value.to_problem()["status"] == 429


def test_tokens_refill_with_time(clock):
    limiter = RateLimiter(per_minute=60, burst=1)
    limiter.check("user:a")
    clock.now += 1.0
    limiter.check("user:a")  # one token per second came back


def test_callers_are_limited_separately(clock):
    limiter = RateLimiter(per_minute=60, burst=1)
    limiter.check("user:a")
    limiter.check("user:b")
    with pytest.raises(TooManyRequests):
        limiter.check("user:a")


def test_memory_stays_bounded(clock):
    limiter = RateLimiter(per_minute=60, burst=2, max_keys=10)
    for i in range(100):
        limiter.check(f"addr:{i}")
    assert len(limiter._buckets) <= 10
