"""What a finished session says about itself: its title, recipe, chapters and tags.

The recipe (every option, the resolved voice and engine, a hash of the
template) is stored in the MP3 so a rebuild, or a week's up-to-date check, can
tell whether the file is still what its request would make.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from audioguide import __version__
from audioguide.request import SAMPLE_RATE, Request
from audioguide.script.markup import Section, Speech
from audioguide.script.templates import Kind
from audioguide.tags import AUDIO_KEY, SIDECARS_KEY, Chapter, Tags, sidecar_digests

if TYPE_CHECKING:
    from audioguide.planning import Plan


def title(request: Request, kind: Kind) -> str:
    """The track title, e.g. 'Breath awareness — 10 min'."""
    return f"{kind.title} — {request.minutes:g} min"


def recipe(p: Plan) -> dict[str, Any]:
    """Everything needed to rebuild the file, as stored in its tag."""
    return recipe_for(p.request, p.voice, p.engine_version)


def recipe_for(request: Request, voice: str, engine_version: str) -> dict[str, Any]:
    """The recipe of ``request`` with its voice resolved (no speech needed to know it)."""
    r = asdict(request)
    r.update(pace=request.pace.value, date=request.date.isoformat(), voice=voice,
             rate=request.speech_rate, engine_version=engine_version, audioguide=__version__,
             focus=list(request.focus), feelings=list(request.feelings),
             track=list(request.track) if request.track else None,
             templates_dir=str(request.templates_dir) if request.templates_dir else None,
             template_file=str(request.template_file) if request.template_file else None,
             template_sha256=hashlib.sha256(request.kind_info().path.read_bytes()).hexdigest())
    del r["out_dir"], r["use_cache"]
    return r


def expected_recipe(request: Request) -> dict[str, Any]:
    """The recipe a build of ``request`` would store, found without rendering any speech."""
    from audioguide.tts import get_engine, resolve_voice
    from audioguide.tts.auto import resolve_engine

    request = replace(request, engine=resolve_engine(request.engine, request.voice))
    engine = get_engine(request.engine)
    return recipe_for(request, resolve_voice(engine, request.voice), engine.version())


def chapters(p: Plan) -> list[Chapter]:
    """One chapter per section heading; the first starts at 0, the last ends at the end."""
    def ms(samples: int) -> int:
        return round(samples * 1000 / SAMPLE_RATE)

    heads = [(e.start, e.cue.title) for e in p.timeline.events if isinstance(e.cue, Section)]
    if not heads:
        return [Chapter(p.kind.title, 0, ms(p.timeline.total))]
    starts = [0] + [start for start, _ in heads[1:]]
    ends = [*starts[1:], p.timeline.total]
    return [Chapter(t, ms(a), ms(b)) for (_, t), a, b in zip(heads, starts, ends, strict=True)]


def voice_credit(p: Plan) -> str:
    """Who made the voice that speaks the session, with its licence."""
    from audioguide.tts import credit, get_engine

    return credit(get_engine(p.request.engine), p.voice)


def session_tags(p: Plan, cover_png: bytes | None = None,
                 audio_sha256: str | None = None,
                 sidecars: dict[str, bytes] | None = None) -> Tags:
    """The ID3 tags of a planned session; ``sidecars`` (file name -> bytes) are the files
    published beside the MP3, whose SHA-256s the tag keeps."""
    request = p.request
    spoken = [c.text for c in p.cues if isinstance(c, Speech)]
    return Tags(
        text={
            "title": title(request, p.kind),
            "artist": "audioguide",
            "album_artist": "audioguide",
            "album": request.album or "audioguide practice sessions",
            "genre": "Meditation",
            "date": request.date.isoformat(),
            "language": "eng",
            "length_ms": str(round(p.timeline.total * 1000 / SAMPLE_RATE)),
            "encoded_by": f"audioguide {__version__}",
            **({"track": f"{request.track[0]}/{request.track[1]}"} if request.track else {}),
        },
        comment=f"{p.kind.description} A guided {practice(p.kind.title)} of "
                f"{request.minutes:g} minutes. You can pause or stop at any time. "
                f"Spoken by {voice_credit(p)}.",
        recipe=recipe(p),
        transcript="\n".join(spoken),
        chapters=chapters(p),
        cover_png=cover_png,
        extra={**({AUDIO_KEY: audio_sha256} if audio_sha256 else {}),
               **({SIDECARS_KEY: sidecar_digests(sidecars)} if sidecars else {})},
    )


def practice(title: str) -> str:
    """"breath awareness practice", "congruence practice" (not "practice practice")."""
    title = title.lower()
    return title if title.endswith("practice") else f"{title} practice"
