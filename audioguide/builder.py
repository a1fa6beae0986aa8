"""The build: a planned session mixed, mastered, encoded, tagged and published.

:func:`build` runs the stages in that order; each stage is a function of the
previous one's output (see the README's pipeline).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from audioguide.planning import BELL, plan
from audioguide.publish import check_output_dir, partial_path, safe_filename
from audioguide.request import SAMPLE_RATE, Progress, Request, validate
from audioguide.script.markup import Speech
from audioguide.tagging import session_tags, title

if TYPE_CHECKING:
    from collections.abc import Iterator

    from audioguide.audio import ambience
    from audioguide.audio.clips import Samples
    from audioguide.audio.ffmpeg import Loudness

log = logging.getLogger(__name__)


def output_name(request: Request) -> str:
    """``breath-10min.mp3``, ``breath-7.5min-alex.mp3``: safe, sortable, readable."""
    if request.file_stem:
        return safe_filename(request.file_stem) + ".mp3"
    kind = request.template_file.stem if request.template_file else request.kind
    parts = [kind, f"{request.minutes:g}min"]
    if request.name:
        parts.append(request.name[:24])
    return safe_filename("-".join(parts)) + ".mp3"


def build(request: Request, progress: Progress | None = None) -> Path:
    """Build the session; return the MP3's path (a ``.vtt`` and a ``.png`` sit beside it)."""
    from audioguide import cover, tags, transcript
    from audioguide.audio import ambience, chimes, ffmpeg
    from audioguide.audio.master import master
    from audioguide.audio.mix import Mixer

    request = validate(request)
    check_output_dir(request.out_dir)
    ffmpeg.executable()
    p = plan(request, progress)
    voice = Mixer(p.timeline, p.clip, p.clip_lengths,
                  lambda name: chimes.render(name or request.chime, SAMPLE_RATE),
                  [(start, chimes.render(BELL, SAMPLE_RATE)) for start in p.bells])
    speech = [(e.start, e.start + e.length) for e in p.timeline.events
              if isinstance(e.cue, Speech)]

    def bed(voice_lufs: float) -> ambience.Bed:
        return ambience.Bed(request.ambience, SAMPLE_RATE, p.timeline.total,
                        voice_lufs + request.ambience_level_db, speech)

    final = request.out_dir / output_name(request)
    cover_png = cover.render(request.kind, p.kind.title, f"{request.minutes:g} min")
    outputs = {
        final.with_suffix(".vtt"): transcript.webvtt(p.timeline, title(request, p.kind)).encode(),
        final.with_suffix(".png"): cover_png,
    }
    partials = {path: partial_path(path) for path in [*outputs, final]}
    try:
        _report(progress, "master")

        def encode(blocks: Iterator[Samples]) -> Loudness:
            _report(progress, "encode")
            ffmpeg.encode_mp3(blocks, SAMPLE_RATE, partials[final], request.bitrate_kbps,
                              request.sample_rate_out)
            return ffmpeg.measure_file(partials[final])

        master(voice, SAMPLE_RATE, encode, request.loudness_lufs,
               bed=bed if request.ambience != "none" else None)
        tags.write(partials[final], session_tags(p, cover_png))
        for path, data in outputs.items():
            partials[path].write_bytes(data)
        # The MP3 goes last: when it is in place, its sidecars are too.
        for path in [*outputs, final]:
            partials[path].replace(path)
    except BaseException:
        for partial in partials.values():
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        raise
    log.info("wrote %s", final)
    return final


def _report(progress: Progress | None, stage: str) -> None:
    if progress is not None:
        progress(stage, 0, 1)
