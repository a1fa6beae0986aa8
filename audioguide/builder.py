"""The build: a planned session mixed, mastered, encoded, tagged and published.

:func:`build` runs the stages in that order; each stage is a function of the
previous one's output (see the README's pipeline).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from audioguide.errors import AudioguideError, EncodeError, RequestError
from audioguide.planning import BELL, Plan, plan
from audioguide.publish import Staging, check_output_dir, safe_filename, sweep
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


def build(request: Request, progress: Progress | None = None,
          planned: Plan | None = None) -> Path:
    """Build the session; return the MP3's path (a ``.vtt`` and a ``.png`` sit beside it).
    ``planned``: the session's plan, made already (a week plans every session first)."""
    from audioguide import cover, memory, tags, transcript
    from audioguide.audio import ambience, chimes, ffmpeg
    from audioguide.audio.master import master
    from audioguide.audio.mix import Mixer
    from audioguide.script import sandbox

    request = validate(request)
    check_output_dir(request.out_dir)
    final = request.out_dir / output_name(request)
    for taken in (final, final.with_suffix(".vtt"), final.with_suffix(".png")):
        if taken.is_dir() and not taken.is_symlink():
            raise RequestError("--out", f"{taken} is a folder, so the session cannot be "
                               "written under that name; move or rename it first.")
    sweep(request.out_dir)
    ffmpeg.executable()
    # The cover is drawn (Pillow, mostly outside the interpreter's lock) while the script
    # is planned and spoken.
    with cf.ThreadPoolExecutor(1) as drawer:
        drawn = drawer.submit(cover.render, request.kind, request.kind_info().title,
                              f"{request.minutes:g} min")
        p = planned if planned is not None and planned.request == request else plan(
            request, progress)
        sandbox.close()
        cover_png = drawn.result()
    memory.for_mixing()
    memory.release()  # what planning and drawing freed (engine audio, clips measured)
    voice = Mixer(p.timeline, p.clip, p.clip_lengths,
                  lambda name: chimes.render(name or request.chime, SAMPLE_RATE),
                  [(start, chimes.render(BELL, SAMPLE_RATE)) for start in p.bells])
    speech = [(e.start, e.start + e.length) for e in p.timeline.events
              if isinstance(e.cue, Speech)]

    def bed(voice_lufs: float) -> ambience.Bed:
        return ambience.Bed(request.ambience, SAMPLE_RATE, p.timeline.total,
                        voice_lufs + request.ambience_level_db, speech)

    with Staging(request.out_dir) as staging:
        mp3 = staging.path(final.name)
        _report(progress, "master")

        def encode(blocks: Iterator[Samples]) -> Loudness:
            _report(progress, "encode")
            return ffmpeg.encode_mp3(_counted(blocks, progress, p.timeline.total), SAMPLE_RATE,
                                     mp3, request.bitrate_kbps, request.sample_rate_out)

        measured = master(voice, SAMPLE_RATE, encode, request.loudness_lufs,
                          bed=bed if request.ambience != "none" else None)
        _check_loudness(request, measured)
        sidecars = {
            final.with_suffix(".vtt").name:
                transcript.webvtt(p.timeline, title(request, p.kind)).encode(),
            final.with_suffix(".png").name: cover_png,
        }
        try:
            digest = tags.audio_digest(mp3)
            tags.write(mp3, session_tags(p, cover_png, digest, sidecars))
            for name, data in sidecars.items():
                staging.path(name).write_bytes(data)
            # The MP3 goes last: when it is in place, its sidecars are too.
            staging.publish([*sidecars, final.name])
        except OSError as exc:
            raise AudioguideError(f"could not write {final.name} and its sidecars in "
                                  f"{request.out_dir} ({exc.strerror or exc}); nothing was "
                                  "published. Free some space or choose another --out.") from exc
    log.info("wrote %s", final)
    return final


#: How far the finished file's integrated loudness may be from the target, in LU.
LOUDNESS_TOLERANCE_LU = 1.0


def _check_loudness(request: Request, measured: Loudness) -> None:
    """Enforce the loudness target and true-peak ceiling on the encoded file."""
    from audioguide.audio.master import CEILING_DBTP

    misses = []
    if abs(measured.integrated_lufs - request.loudness_lufs) > LOUDNESS_TOLERANCE_LU:
        misses.append(f"integrated loudness {measured.integrated_lufs:.1f} LUFS, not "
                      f"{request.loudness_lufs:g} +/- {LOUDNESS_TOLERANCE_LU:g}")
    if measured.true_peak_dbtp > CEILING_DBTP:
        misses.append(f"true peak {measured.true_peak_dbtp:.1f} dBTP, above "
                      f"{CEILING_DBTP:g}")
    if not misses:
        return
    text = f"the encoded file measures {' and '.join(misses)}"
    if request.loudness_check == "warn":
        log.warning("%s; published anyway (--loudness-check warn)", text)
        return
    raise EncodeError(f"{text}; nothing was published. Pass --loudness-check warn to publish "
                      "such a file anyway.")


def _counted(blocks: Iterator[Samples], progress: Progress | None,
             total: int) -> Iterator[Samples]:
    """The blocks, each reported as encoded so far out of ``total`` samples (a listener
    watching a build from the page sees it move, and can stop it, while it encodes)."""
    done, step = 0, max(1, total // 100)  # at most about a hundred reports
    reported = 0
    for block in blocks:
        yield block
        done += len(block)
        if progress is not None and done - reported >= step:
            reported = done
            progress("encode", min(done, total), total)


def _report(progress: Progress | None, stage: str) -> None:
    if progress is not None:
        progress(stage, 0, 1)
