"""Property-based tests: any input builds exactly or fails with the project's own clear error."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audioguide.cli import cli
from audioguide.errors import AudioguideError, TemplateError, TooLongError, TooShortError
from audioguide.planning import plan
from audioguide.request import SAMPLE_RATE, Request
from audioguide.script.markup import Chime, Cue, Elastic, Pause, Section, Speech, parse
from audioguide.timing import fit

markup_lines = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"\[pause -?[0-9.]{0,6}(\.\.[0-9.]{0,6})?( weight=[0-9.-]{0,4})?\]",
                  fullmatch=True),
    st.from_regex(r"\[chime( [a-zA-Z -]{0,8})?\]", fullmatch=True),
    st.from_regex(r"#{0,3} ?[a-z ]{0,10}", fullmatch=True),
)


@given(st.lists(markup_lines, max_size=30))
def test_parser_gives_cues_or_a_clear_error(lines: list[str]) -> None:
    try:
        cues = parse("\n".join(lines), source="t.j2")
    except TemplateError as exc:
        assert exc.message.startswith(("The script markup has problems", "t.j2"))
        return
    assert any(isinstance(c, Speech) for c in cues)
    for cue in cues:
        if isinstance(cue, Elastic):
            assert cue.min_s >= 0 and cue.weight > 0
            assert cue.max_s is None or cue.max_s >= cue.min_s


cue_strategy = st.one_of(
    st.builds(Speech, st.just("x"), st.just(1)),
    st.builds(Pause, st.floats(0, 5), st.just(1)),
    st.builds(Elastic, st.floats(0, 20), st.one_of(st.none(), st.floats(20, 200)),
              st.floats(0.1, 5), st.just(1)),
    st.builds(Chime, st.just(None), st.just(1)),
    st.builds(Section, st.just("s"), st.just(1)),
)


def test_fitter_is_exact_or_says_why() -> None:
    outcomes: Counter[str] = Counter()

    @settings(max_examples=300, deadline=None)
    @given(st.lists(cue_strategy, max_size=24), st.booleans(), st.integers(1, 10_000_000),
           st.lists(st.integers(1, 100_000), min_size=25, max_size=25))
    def check(cues: list[Cue], open_ended: bool, target: int, lengths: list[int]) -> None:
        if open_ended:  # a pause with no maximum: most such scripts fit
            cues = [*cues, Elastic(0.5, None, 1.0, 1)]
        speech = [n for n, c in zip(lengths, cues, strict=False) if isinstance(c, Speech)]
        speech += lengths[len(speech):sum(isinstance(c, Speech) for c in cues)]
        try:
            timeline = fit(cues, speech, lambda _: 44_100, target, 44_100)
        except (TooShortError, TooLongError) as exc:
            assert exc.field == "--minutes" and "minutes" in exc.message
            outcomes["refused"] += 1
            return
        assert timeline.total == target
        assert sum(p.length for p in timeline.events) == target
        assert all(p.length >= 0 for p in timeline.events)
        for placed in timeline.events:
            if isinstance(placed.cue, Elastic):
                assert placed.length >= math.floor(placed.cue.min_s * 44_100)
        outcomes["fitted"] += 1

    check()
    # Both paths were really exercised, not only the early returns.
    assert outcomes["fitted"] >= 10 and outcomes["refused"] >= 10, outcomes


names = st.one_of(st.none(), st.text(max_size=50))
minutes = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(min_value=2, max_value=12))


def test_any_options_fit_exactly_or_fail_clearly() -> None:
    outcomes: Counter[str] = Counter()

    # The same forty examples every run (nine build, thirty-one are refused): whether a
    # random draw held three buildable requests was left to chance before, and a full
    # run of the suite once drew only two.
    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(kind=st.sampled_from(["check-in", "breath", "grounding", "walking", "nope"]),
           minutes=minutes, name=names, rate=st.one_of(st.none(), st.integers(40, 300)),
           settle=st.floats(-5, 70))
    def check(kind: str, minutes: float, name: str | None, rate: int | None,
              settle: float) -> None:
        request = Request(kind, minutes, name=name, rate=rate, settle_s=settle)
        try:
            p = plan(request)
        except AudioguideError as exc:
            # A documented error, naming what was wrong.
            named = re.findall(r"--[a-z-]+|KIND", exc.message)
            assert named and set(named) <= {"--minutes", "--name", "--rate", "--settle", "KIND"}
            outcomes["refused"] += 1
            return
        assert p.timeline.total == round(minutes * 60 * SAMPLE_RATE)
        outcomes["built"] += 1

    check()
    assert outcomes["built"] >= 3 and outcomes["refused"] >= 10, outcomes


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                              HealthCheck.function_scoped_fixture])
@given(minutes=st.one_of(st.sampled_from(["0", "-1", "abc", "1e9", "nan", "", "2.25"]),
                         st.floats(1, 4).map(lambda m: f"{m:.2f}")),
       name=st.text(max_size=20))
def test_cli_never_shows_a_traceback_or_leaves_a_file(tmp_path: Path, minutes: str,
                                                      name: str) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", "check-in", "--minutes", minutes, "--name", name,
                                      "--out", str(out)])
    assert "Traceback" not in result.output
    files = sorted(out.iterdir()) if out.exists() else []
    if result.exit_code == 0:
        assert [p.suffix for p in files if p.suffix == ".mp3"] == [".mp3"]
    else:
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert [p for p in files if p.suffix == ".mp3"] == []
    for file in files:
        file.unlink()
    assert not [p for p in (out.iterdir() if out.exists() else []) if p.name.startswith(".")]
