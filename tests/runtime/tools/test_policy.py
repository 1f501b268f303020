"""Policies: parsing, backoff bounds and determinism, retries, circuit breakers (exact, with FakeClock)."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest
from planc.runtime.journal.clock import FakeClock, SystemClock
from planc.runtime.tools.policy import (
    Attempt,
    AttemptReport,
    BreakerOpen,
    BreakerRegistry,
    BreakerState,
    CircuitBreaker,
    Jitter,
    OnFailure,
    OutcomeKind,
    Policy,
    PolicyError,
    ToolError,
    ToolTimeout,
    backoff_delay,
    call_with_policy,
)
from planc.runtime.tools.runner import ToolCall, ToolKind, ToolRunner, ToolSpec

FIXTURES = Path(__file__).with_name("tools_fixtures")


def failing(n_failures: int, *, timeout_on: frozenset[int] = frozenset()):
    """fn that fails its first `n_failures` attempts (timeouts on the listed attempt numbers)."""
    seen: list[Attempt] = []

    def fn(a: Attempt) -> str:
        seen.append(a)
        if a.number in timeout_on:
            raise ToolTimeout("svc", a.timeout or 1.0)
        if a.number <= n_failures:
            raise ToolError("svc", f"failure {a.number}")
        return f"ok after {a.number}"

    return fn, seen


def test_policy_from_manifest_full_and_default() -> None:
    p = Policy.from_manifest(
        {
            "retry": 3,
            "backoff": [0.1, 2.0],
            "timeout": 2.0,
            "breaker": [5, 30.0],
            "on_failure": "use",
            "fallback": "emb",
            "cost": 0.08,
        },
        task="t",
    )
    assert p == Policy(3, (0.1, 2.0), 2.0, (5, 30.0), OnFailure.USE, "emb")
    assert p.attempts == 4
    assert Policy.from_manifest(None) == Policy.from_manifest({}) == Policy()
    assert Policy().attempts == 1 and Policy().on_failure is OnFailure.FAIL
    assert Policy.from_manifest({"on_failure": "skip", "fallback": None}).on_failure is OnFailure.SKIP


@pytest.mark.parametrize(
    "d,msg",
    [
        ({"retry": -1}, "'retry' must be an integer >= 0"),
        ({"retry": 1.5}, "'retry' must be an integer"),
        ({"backoff": [2.0, 1.0]}, "low 2s is above high 1s"),
        ({"backoff": [0.1]}, r"'backoff' must be \[low, high\]"),
        ({"timeout": 0}, "'timeout' must be > 0"),
        ({"timeout": "2s"}, "'timeout' must be a finite number"),
        ({"breaker": [0, 30]}, "'breaker' must be an integer >= 1"),
        ({"breaker": [3, 0]}, "window must be > 0"),
        ({"on_failure": "retry"}, "expected one of: fail, skip, use"),
        ({"on_failure": "use"}, "needs a fallback value name"),
        ({"retries": 3}, "unknown policy key.*retries.*expected: retry, backoff"),
    ],
)
def test_policy_errors_name_the_task_and_key(d, msg) -> None:
    with pytest.raises(PolicyError, match=msg) as e:
        Policy.from_manifest(d, task="alert")
    assert "task 'alert'" in str(e.value)


@pytest.mark.parametrize("jitter", list(Jitter))
def test_backoff_within_bounds_and_seeded_deterministic(jitter: Jitter) -> None:
    low, high = 0.1, 2.0
    for seed in range(20):
        a, b = random.Random(seed), random.Random(seed)
        prev_a = prev_b = None
        for k in range(12):
            da = backoff_delay(k, (low, high), a, jitter=jitter, previous=prev_a)
            db = backoff_delay(k, (low, high), b, jitter=jitter, previous=prev_b)
            assert da == db
            assert low <= da <= high
            if jitter is Jitter.FULL:
                assert da <= min(high, low * 2**k)  # the exponential cap
            else:
                assert da <= max(low, 3 * (prev_a or low))
            prev_a, prev_b = da, db
    other = [backoff_delay(3, (low, high), random.Random(s)) for s in range(5)]
    assert len(set(other)) == 5  # it really is jittered


def test_full_jitter_grows_exponentially_on_average() -> None:
    rng = random.Random(1)
    means = [sum(backoff_delay(k, (0.1, 100.0), rng) for _ in range(400)) / 400 for k in range(5)]
    for k in range(1, 5):  # uniform(low, low*2^k) has mean low*(1+2^k)/2
        assert means[k] == pytest.approx(0.1 * (1 + 2**k) / 2, rel=0.1)


def test_retry_counts_and_delays_are_exact() -> None:
    clock, policy = FakeClock(), Policy(retry=3, backoff=(0.5, 4.0), timeout=1.5)
    fn, seen = failing(2)
    reports: list[AttemptReport] = []
    out = call_with_policy(fn, policy, clock=clock, rng=random.Random(3), on_attempt=reports.append)
    assert out.kind is OutcomeKind.OK and out.value == "ok after 3" and out.attempts == 3
    assert [a.number for a in seen] == [1, 2, 3] and all(a.timeout == 1.5 for a in seen)
    expected = [policy.delay(0, r := random.Random(3)), 0.0]
    expected[1] = policy.delay(1, r, expected[0])
    assert list(out.delays) == expected == clock.sleeps
    assert clock.now() == pytest.approx(sum(expected))
    assert [(r.number, r.error is not None, r.next_delay) for r in reports] == [
        (1, True, expected[0]),
        (2, True, expected[1]),
        (3, False, None),
    ]


def test_exhausted_retries_fail_with_the_last_error() -> None:
    clock = FakeClock()
    fn, seen = failing(10, timeout_on=frozenset({4}))
    out = call_with_policy(fn, Policy(retry=3), clock=clock, rng=random.Random(0))
    assert out.kind is OutcomeKind.FAILED and out.attempts == 4 and len(seen) == 4
    assert isinstance(out.error, ToolTimeout) and out.error.attempt == 4  # a timeout is a failure too
    assert len(clock.sleeps) == 3
    with pytest.raises(ToolTimeout, match=r"tool 'svc' \(attempt 4\): timed out"):
        out.unwrap()


def test_no_retry_means_one_attempt_and_no_sleep() -> None:
    clock = FakeClock()
    fn, seen = failing(1)
    out = call_with_policy(fn, Policy(), clock=clock, rng=random.Random(0))
    assert out.kind is OutcomeKind.FAILED and len(seen) == 1 and clock.sleeps == []


def test_non_tool_exceptions_propagate() -> None:
    def bug(a: Attempt) -> None:
        raise KeyError("internal")

    breaker = CircuitBreaker("svc", 1, 10.0, clock=FakeClock())
    with pytest.raises(KeyError):
        call_with_policy(bug, Policy(retry=5), clock=FakeClock(), rng=random.Random(0), breaker=breaker)
    assert breaker.state is BreakerState.CLOSED  # an internal error is not the tool's failure


def test_cancel_skips_before_the_next_attempt() -> None:
    cancel = threading.Event()

    def fn(a: Attempt) -> None:
        cancel.set()
        raise ToolError("svc", "down")

    out = call_with_policy(fn, Policy(retry=5), clock=FakeClock(), rng=random.Random(0), cancel=cancel)
    assert out.kind is OutcomeKind.SKIPPED and out.attempts == 1 and "down" in str(out.error)


def test_breaker_state_machine_exact_times() -> None:
    clock = FakeClock()
    b = CircuitBreaker("svc", 3, 10.0, clock=clock)
    b.record_failure()
    clock.advance(6)
    b.record_failure()
    clock.advance(6)  # the first failure left the 10 s window
    b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.record_success()  # a success clears the count
    b.record_failure()
    b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.record_failure()
    assert b.state is BreakerState.OPEN
    with pytest.raises(
        BreakerOpen, match=r"open after 3 failures within 10s; failing fast, next probe allowed in 10s"
    ):
        b.allow()
    clock.advance(9.75)
    with pytest.raises(BreakerOpen):
        b.allow()
    clock.advance(0.25)
    assert b.state is BreakerState.HALF_OPEN
    b.allow()  # the one probe
    with pytest.raises(BreakerOpen):
        b.allow()  # a second caller while the probe runs
    b.record_failure()  # the probe failed: open again for a full window
    assert b.state is BreakerState.OPEN and b.retry_after() == 10.0
    clock.advance(10)
    b.allow()
    b.record_success()
    assert b.state is BreakerState.CLOSED
    b.allow()
    b.allow()


def test_always_failing_tool_opens_breaker_and_later_calls_fail_fast(tmp_path: Path) -> None:
    clock = FakeClock()
    registry = BreakerRegistry(clock)
    policy = Policy.from_manifest({"retry": 2, "backoff": [0.1, 0.2], "breaker": [3, 30.0]})
    spec = {"fail": ToolSpec("fail", ToolKind.EXEC, "fail.sh")}
    runs = []
    with ToolRunner(spec, FIXTURES, cwd=tmp_path) as runner:

        def attempt(a: Attempt, task: str) -> object:
            runs.append(task)
            return runner.call(ToolCall("fail", task, "r", f"r:{task}", attempt=a.number, timeout=5.0))

        # Two tasks share the tool, hence the breaker.
        first = call_with_policy(
            lambda a: attempt(a, "t1"),
            policy,
            clock=clock,
            rng=random.Random(0),
            breaker=registry.get("fail", policy),
        )
        assert first.kind is OutcomeKind.FAILED and first.attempts == 3
        assert "the service is down" in str(first.error)
        second = call_with_policy(
            lambda a: attempt(a, "t2"),
            policy,
            clock=clock,
            rng=random.Random(0),
            breaker=registry.get("fail", policy),
        )
    assert second.kind is OutcomeKind.BREAKER_OPEN and second.attempts == 0
    assert runs == ["t1", "t1", "t1"]  # t2 never ran the tool
    assert isinstance(second.error, BreakerOpen)
    assert str(second.error).startswith("tool 'fail': circuit breaker open after 3 failures within 30s")
    assert registry.get("fail", policy) is registry.get("fail", Policy(breaker=(9, 1.0)))
    assert registry.get("fail", Policy()) is None


def test_retry_stops_early_when_the_breaker_opens() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("svc", 2, 60.0, clock=clock)
    fn, seen = failing(100)
    out = call_with_policy(
        fn, Policy(retry=10, backoff=(1.0, 2.0)), clock=clock, rng=random.Random(0), breaker=breaker
    )
    assert out.kind is OutcomeKind.BREAKER_OPEN and out.attempts == 2 and len(seen) == 2
    assert len(clock.sleeps) == 1  # no pointless sleep once it is open


def test_half_open_probe_success_closes_through_call_with_policy() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("svc", 1, 5.0, clock=clock)
    bad, _ = failing(1)
    assert (
        call_with_policy(bad, Policy(), clock=clock, rng=random.Random(0), breaker=breaker).kind
        is OutcomeKind.FAILED
    )
    good, _ = failing(0)
    assert (
        call_with_policy(good, Policy(), clock=clock, rng=random.Random(0), breaker=breaker).kind
        is OutcomeKind.BREAKER_OPEN
    )
    clock.advance(5.0)
    assert call_with_policy(good, Policy(), clock=clock, rng=random.Random(0), breaker=breaker).ok
    assert breaker.state is BreakerState.CLOSED


def test_breaker_admits_one_probe_among_threads() -> None:
    clock = FakeClock()
    b = CircuitBreaker("svc", 1, 1.0, clock=clock)
    b.record_failure()
    clock.advance(1.0)
    admitted = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        try:
            b.allow()
            admitted.append(1)
        except BreakerOpen:
            pass

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert admitted == [1]


def test_clocks() -> None:
    fake = FakeClock(10.0, wall_start=1000.0)
    fake.sleep(2.5)
    fake.advance(0.5)
    assert (fake.now(), fake.wall(), fake.sleeps) == (13.0, 1003.0, [2.5])
    with pytest.raises(ValueError):
        fake.sleep(-1)
    real = SystemClock()
    t0 = real.now()
    real.sleep(0.01)
    assert real.now() - t0 >= 0.01 and real.wall() > 1.6e9
