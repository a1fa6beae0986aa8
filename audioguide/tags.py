"""ID3v2.4 tags, written with mutagen.

Text fields map to frames through one literal table. Errors from mutagen are
turned into the project's own :class:`~audioguide.errors.EncodeError` here, at
the module boundary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audioguide.errors import EncodeError

#: Tag field -> ID3v2.4 text frame.
TEXT_FRAMES: dict[str, str] = {
    "title": "TIT2",
    "artist": "TPE1",
    "album": "TALB",
    "album_artist": "TPE2",
    "genre": "TCON",
    "date": "TDRC",
    "track": "TRCK",
    "language": "TLAN",
    "length_ms": "TLEN",
    "encoded_by": "TENC",
}

#: The TXXX description under which the full recipe is stored.
RECIPE_KEY = "audioguide-recipe"


@dataclass(frozen=True)
class Chapter:
    """A chapter: a title and its span in milliseconds."""

    title: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Tags:
    """What gets written into an MP3's ID3 tag."""

    text: Mapping[str, str]
    comment: str
    recipe: Mapping[str, Any]
    transcript: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    chapters: Sequence[Chapter] = ()
    #: PNG bytes of the front cover.
    cover_png: bytes | None = None


def write(path: Path, tags: Tags) -> None:
    """Replace any tag in ``path`` with ``tags`` as ID3v2.4."""
    from mutagen.id3 import APIC, COMM, CTOC, TXXX, USLT, CTOCFlags, Frames, PictureType
    from mutagen.id3 import error as id3_error

    tag = _ChapterOrderedID3()
    for key, value in tags.text.items():
        frame_id = TEXT_FRAMES[key]
        tag.add(Frames[frame_id](encoding=3, text=[value]))
    tag.add(COMM(encoding=3, lang="eng", desc="", text=[tags.comment]))
    tag.add(TXXX(encoding=3, desc=RECIPE_KEY,
                 text=[json.dumps(dict(tags.recipe), sort_keys=True, ensure_ascii=False)]))
    for desc, value in tags.extra.items():
        tag.add(TXXX(encoding=3, desc=desc, text=[value]))
    if tags.transcript:
        tag.add(USLT(encoding=3, lang="eng", desc="", text=tags.transcript))
    if tags.cover_png:
        tag.add(APIC(encoding=3, mime="image/png", type=PictureType.COVER_FRONT,
                     desc="Cover", data=tags.cover_png))
    if tags.chapters:
        ids = [f"chp{i:03d}" for i in range(len(tags.chapters))]
        tag.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                     child_element_ids=ids,
                     sub_frames=[Frames["TIT2"](encoding=3, text=["Chapters"])]))
        for element_id, chapter in zip(ids, tags.chapters, strict=True):
            tag.add(_chap(element_id, chapter))
    try:
        tag.save(str(path), v2_version=4)
    except (OSError, id3_error) as exc:
        raise EncodeError(f"Could not write the tags of {path}: {exc}") from exc


def _chap(element_id: str, chapter: Chapter) -> Any:
    from mutagen.id3 import CHAP, TIT2

    return CHAP(element_id=element_id, start_time=chapter.start_ms, end_time=chapter.end_ms,
                start_offset=0xFFFFFFFF, end_offset=0xFFFFFFFF,
                sub_frames=[TIT2(encoding=3, text=[chapter.title])])


def _chapter_ordered_id3_class() -> Any:
    from mutagen.id3 import ID3
    from mutagen.id3._tags import save_frame

    class ChapterOrderedID3(ID3):
        """ID3 that writes CHAP frames in start-time order.

        mutagen sorts frames by size when saving (quodlibet/mutagen #506, fix
        unmerged), so chapters come out of order and ffmpeg and some players
        list them so. This writes every other frame as mutagen does, then the
        chapters in time order.
        """

        def _write(self, config: Any) -> bytearray:
            chapters = sorted(self.getall("CHAP"), key=lambda f: (f.start_time, f.element_id))
            self.delall("CHAP")
            try:
                data: bytearray = super()._write(config)
            finally:
                for frame in chapters:
                    self.add(frame)
            for frame in chapters:
                data += save_frame(frame, config=config)
            return data

    return ChapterOrderedID3


def _ChapterOrderedID3() -> Any:  # noqa: N802 - a class factory, used like a class
    return _chapter_ordered_id3_class()()


@dataclass(frozen=True)
class Written:
    """What :func:`read` finds in a session's tag."""

    title: str
    comment: str
    date: str
    length_ms: int
    track: int
    chapters: tuple[Chapter, ...]
    #: The SHA-256 of the audio frames the build wrote ("" in a file without one).
    audio: str = ""


def read(path: Path) -> Written:
    """Read back the tag that :func:`write` wrote."""
    from mutagen.id3 import ID3, ID3NoHeaderError

    try:
        tag: Any = ID3(str(path))
        track = str(tag["TRCK"].text[0]).split("/")[0] if "TRCK" in tag else "0"
        chapters = sorted(
            (Chapter(str(f.sub_frames["TIT2"].text[0]), f.start_time, f.end_time)
             for f in tag.getall("CHAP")),
            key=lambda c: c.start_ms,
        )
        return Written(
            title=str(tag["TIT2"].text[0]),
            comment=str(tag.getall("COMM")[0].text[0]),
            date=str(tag["TDRC"].text[0]),
            length_ms=int(str(tag["TLEN"].text[0])),
            track=int(track),
            chapters=tuple(chapters),
            audio=str(tag[f"TXXX:{AUDIO_KEY}"].text[0]) if f"TXXX:{AUDIO_KEY}" in tag else "",
        )
    except (OSError, ID3NoHeaderError, KeyError, IndexError, ValueError) as exc:
        raise EncodeError(f"{path} does not carry a complete audioguide tag: {exc}") from exc


def read_recipe(path: Path) -> dict[str, Any]:
    """The recipe stored in ``path``'s tag (to rebuild or compare a session)."""
    from mutagen.id3 import ID3, ID3NoHeaderError

    try:
        tag = ID3(str(path))
    except (OSError, ID3NoHeaderError) as exc:
        raise EncodeError(f"{path} has no audioguide tag: {exc}") from exc
    frame = tag.get(f"TXXX:{RECIPE_KEY}")
    if frame is None:
        raise EncodeError(f"{path} has no audioguide recipe.")
    recipe: dict[str, Any] = json.loads(frame.text[0])
    return recipe


#: The TXXX description under which a SHA-256 of the MP3's audio frames is stored.
AUDIO_KEY = "audioguide-audio"


def audio_digest(path: Path) -> str:
    """SHA-256 of the file's bytes after its ID3v2 tag (the audio frames alone)."""
    import hashlib

    skip = _audio_start(path)
    with path.open("rb") as fh:
        fh.seek(skip)
        digest = hashlib.sha256()
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _audio_start(path: Path) -> int:
    """Where the audio frames start: after the ID3v2 tag, if any."""
    with path.open("rb") as fh:
        head = fh.read(10)
    if len(head) == 10 and head[:3] == b"ID3":
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (
            head[9] & 0x7F)
        return 10 + size + (10 if head[5] & 0x10 else 0)
    return 0


def length_plausible(path: Path, seconds: float, bitrate_kbps: int) -> bool:
    """True when the constant-bitrate audio of ``path`` holds ``seconds`` of sound, by its
    size (within half a second): a file cut short when a disk filled, whose tag was
    written afterwards, says whole but is not."""
    try:
        size = path.stat().st_size - _audio_start(path)
    except OSError:
        return False
    return abs(size / (bitrate_kbps * 125) - seconds) <= 0.5


def audio_intact(path: Path) -> bool:
    """True when the audio frames are exactly those the build wrote (a truncated or
    emptied file, or one whose audio was replaced, is not)."""
    from mutagen.id3 import ID3, ID3NoHeaderError

    try:
        frame = ID3(str(path)).get(f"TXXX:{AUDIO_KEY}")
        return frame is not None and str(frame.text[0]) == audio_digest(path)
    except (OSError, ID3NoHeaderError):
        return False


#: The TXXX description under which the SHA-256s of the files beside the MP3 are stored.
SIDECARS_KEY = "audioguide-sidecars"


def sidecar_digests(sidecars: dict[str, bytes]) -> str:
    """The sidecars' SHA-256s by suffix, as stored in the tag."""
    import hashlib

    return json.dumps({Path(name).suffix: hashlib.sha256(data).hexdigest()
                       for name, data in sorted(sidecars.items())}, sort_keys=True)


def sidecars_intact(path: Path) -> bool:
    """True when the transcript and cover beside ``path`` are exactly those its build wrote
    (an emptied file, or another listener's copied over it, is not)."""
    import hashlib

    from mutagen.id3 import ID3, ID3NoHeaderError

    try:
        frame = ID3(str(path)).get(f"TXXX:{SIDECARS_KEY}")
        if frame is None:
            return False
        expected: dict[str, str] = json.loads(str(frame.text[0]))
        return bool(expected) and all(
            hashlib.sha256(path.with_suffix(suffix).read_bytes()).hexdigest() == digest
            for suffix, digest in expected.items())
    except (OSError, ID3NoHeaderError, ValueError, AttributeError):
        return False
