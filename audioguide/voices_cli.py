"""``audioguide voices``: the voices installed here, their downloads, and a sample to hear."""

from __future__ import annotations

import re
from pathlib import Path

import click

from audioguide.console import CONTEXT, Reporter, echo, verbose_option
from audioguide.errors import RequestError
from audioguide.params import FOLDER, TEXT

#: What ``--sample`` speaks: the opening of a breath session, about 20 seconds with its
#: pauses at the session's own rate.
SAMPLE_LINES = (
    "Welcome. Let your body settle, and feel where it is supported.",
    "Notice your breath, just as it is. There is nothing to change.",
    "When your mind wanders, gently come back.",
)
SAMPLE_PAUSE_S = 1.2
SAMPLE_WPM = 120.0


@click.command(context_settings=CONTEXT)
@click.option("--engine", default="auto", show_default=True,
              help="Speech engine: auto (the one builds use here), hibari, kokoro, piper or "
                   "pyttsx3.")
@click.option("--download", type=TEXT, metavar="NAME",
              help="Download voices: kokoro (kokoro-onnx's model and voices; kokoro-full "
                   "adds the full-precision model), kokoro-js (Kokoro's 28 English voices "
                   "from npm), hibari:NAME (a hibari voice such as hibari:emma), or a Piper "
                   "voice such as en_US-lessac-medium.")
@click.option("--sample", type=TEXT, metavar="VOICE",
              help="Write a 20-second MP3 of VOICE reading a session's opening, to choose "
                   "a voice by ear (with --engine, or the first engine that has it).")
@click.option("--out", type=FOLDER, default=Path("output"), show_default=True,
              help="Where --sample writes its MP3.")
@verbose_option
def voices(engine: str, download: str | None, sample: str | None, out: Path) -> None:
    """List the voices of the speech engines, with accent, licence and measured quality."""
    from audioguide.tts import AUTO, get_engine
    from audioguide.tts.auto import choose_engine, measured

    if download:
        return _download(download)
    if sample:
        return echo(str(_sample(engine, sample, out)))
    if engine == AUTO:
        engine, why = choose_engine()
        click.echo(f"engine: {engine} (chosen by --engine auto: {why})")
    eng = get_engine(engine)
    default = eng.default_voice()
    for voice in eng.voices():
        mark = " (default)" if voice.id == default else ""
        figures = measured(engine, voice.id)
        click.echo(f"{voice.id:<28} {','.join(voice.languages):<18} {voice.name}"
                   f"{' · ' + figures if figures else ''}{mark}")


def _download(name: str) -> None:
    from audioguide.tts import get_engine, kokoro_files, kokoro_js, piper_engine

    if name == "kokoro-js":
        get_engine("kokoro")
        return click.echo(f"installed {kokoro_js.download()}")
    if name.startswith("hibari:"):
        engine = get_engine("hibari")
        voice = engine.resolve(name.partition(":")[2])  # type: ignore[attr-defined]
        return click.echo(f"installed the hibari voice {voice}")
    if name in kokoro_files.DOWNLOADS:
        get_engine("kokoro")
        reporter = Reporter()
        try:
            paths = kokoro_files.download(name, lambda file, done, total: reporter(
                f"downloading {file}: {done >> 20} of {total >> 20 or '?'} MB", done, total))
        finally:
            reporter.close()
        return click.echo("\n".join(f"installed {path}" for path in paths))
    get_engine("piper")
    click.echo(f"downloaded {piper_engine.download(name)}")


def _sample(engine_name: str, wanted: str, out: Path) -> Path:
    """Speak :data:`SAMPLE_LINES` with ``wanted`` at the session rate, as a session's voice
    is made ready (its rate, trimmed clips, -19 LUFS, peaks limited), into ``out``; the MP3's
    path."""
    import os

    import numpy as np

    from audioguide.audio.clips import decode
    from audioguide.audio.ffmpeg import encode_mp3, measure
    from audioguide.audio.master import CEILING_DBTP, ENCODER_MARGIN_DB, TARGET_LUFS, limit
    from audioguide.publish import PARTIAL_SUFFIX
    from audioguide.tts import calibrate, get_engine, resolve_voice
    from audioguide.tts.auto import resolve_engine
    from audioguide.tts.cache import default_cache_dir
    from audioguide.tts.speaker import SAMPLE_RATE

    engine = get_engine(resolve_engine(engine_name, wanted))
    voice = resolve_voice(engine, wanted)
    # Not measured for a sample (Kokoro takes minutes to measure): the voice's kept
    # measurements, else the engine's typical ones, give the rate near enough.
    setting = calibrate.estimate(engine, voice, SAMPLE_WPM, default_cache_dir(),
                                 engine.version())
    clips = engine.synthesize(list(SAMPLE_LINES), voice, setting)
    pause = np.zeros(round(SAMPLE_PAUSE_S * SAMPLE_RATE), dtype=np.float32)
    parts = [pause]
    for clip in clips:
        parts += [decode(clip, SAMPLE_RATE), pause]
    audio = np.concatenate(parts)
    # As a session is mastered: one gain to the target, the peaks limited below the
    # ceiling (with the encoder's margin), then the gain corrected once for what the
    # limiter took.
    for _ in range(2):
        level = measure(audio, SAMPLE_RATE)
        audio *= np.float32(10 ** ((TARGET_LUFS - level.integrated_lufs) / 20))
        limit(audio, SAMPLE_RATE, CEILING_DBTP - ENCODER_MARGIN_DB)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{engine.name}-{voice}").strip("-.")[:80]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RequestError("--out", f"cannot make the folder {out} ({exc.strerror or exc}); "
                           "give a folder you can write to.") from None
    target = out / f"sample-{slug}.mp3"
    partial = out / f"sample-{slug}-{os.getpid()}{PARTIAL_SUFFIX}"
    try:
        encode_mp3(audio, SAMPLE_RATE, partial, 128)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target
