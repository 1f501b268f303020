"""The blocked device timeline finds the same gaps as a plain scan of every interval."""

from hypothesis import example, given, settings
from hypothesis import strategies as st
from planc.compiler.scheduling.timeline import BLOCK, Timeline


def _naive_slot(busy: list[tuple[float, float]], ready: float, dur: float) -> float:
    t = ready
    for s, f in sorted(busy):
        if f <= t:
            continue
        if t + dur <= s:
            return t
        t = max(t, f)
    return t


@settings(max_examples=300, deadline=None)
@example(requests=[(0, 0), (1, 0), (0, 1), (0, 1)])  # zero-length intervals tied on their start
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 12)), min_size=1, max_size=6 * BLOCK))
def test_slots_match_a_plain_scan(requests: list[tuple[int, int]]) -> None:
    tl = Timeline(1)
    busy: list[tuple[float, float]] = []
    for ready, dur in requests:
        got = tl.slot(0, float(ready), float(dur))
        assert got == _naive_slot(busy, float(ready), float(dur))
        tl.add(0, got, got + dur)
        busy.append((got, got + dur))
    assert tl.slot(0, 0.0, 5.0, insertion=False) == max(f for _, f in busy)
