from __future__ import annotations

import pytest

from audioguide.errors import TooLongError, TooShortError
from audioguide.script.markup import Chime, Cue, Elastic, Pause, Section, Speech
from audioguide.timing import fit

RATE = 1000


def chime(_name: str | None) -> int:
    return 500


def test_exact_total_and_contiguous_positions() -> None:
    cues: list[Cue] = [Section("A", 1), Chime(None, 1), Speech("a", 2), Elastic(1, None, 1, 3),
                       Speech("b", 4), Pause(0.5, 5), Elastic(2, None, 3, 6)]
    timeline = fit(cues, [1234, 777], chime, 20_001, RATE)
    assert timeline.total == 20_001
    assert sum(p.length for p in timeline.events) == 20_001
    for before, after in zip(timeline.events, timeline.events[1:], strict=False):
        assert after.start == before.start + before.length
    e1, e2 = timeline.events[3].length, timeline.events[6].length
    # The free time is 20001 - (500 + 1234 + 777 + 500) = 16990; mins 1000 + 2000,
    # the rest shared 1:3.
    assert e1 + e2 == 16_990
    assert abs((e1 - 1000) * 3 - (e2 - 2000)) <= 4


def test_capped_pauses_give_their_share_to_the_others() -> None:
    cues: list[Cue] = [Speech("a", 1), Elastic(1, 2, 1, 2), Elastic(1, None, 1, 3)]
    timeline = fit(cues, [1000], chime, 11_000, RATE)
    assert timeline.events[1].length == 2000
    assert timeline.events[2].length == 8000


def test_too_short_states_the_minimum() -> None:
    cues: list[Cue] = [Speech("a", 1), Elastic(5, None, 1, 2)]
    with pytest.raises(TooShortError) as err:
        fit(cues, [60_000], chime, 30_000, RATE, what="this test")
    assert err.value.minimum_s == pytest.approx(65.0)
    assert "at least 1.1 minutes" in err.value.message


def test_too_long_when_every_pause_is_at_its_maximum() -> None:
    cues: list[Cue] = [Speech("a", 1), Elastic(1, 3, 1, 2)]
    with pytest.raises(TooLongError):
        fit(cues, [1000], chime, 10_000, RATE)


@pytest.mark.parametrize("target", [5000, 5001, 9_999_999])
def test_rounding_never_loses_a_sample(target: int) -> None:
    cues: list[Cue] = [Speech("a", 1), *(Elastic(0.001, None, w, 2) for w in (1, 2, 3, 7))]
    timeline = fit(cues, [333], chime, target, RATE)
    assert timeline.total == target
