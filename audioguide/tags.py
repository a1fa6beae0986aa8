"""ID3v2.4 tags, written with mutagen.

Text fields map to frames through one literal table. Errors from mutagen are
turned into the project's own :class:`~audioguide.errors.EncodeError` here, at
the module boundary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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
class Tags:
    """What gets written into an MP3's ID3 tag."""

    text: Mapping[str, str]
    comment: str
    recipe: Mapping[str, Any]
    transcript: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


def write(path: Path, tags: Tags) -> None:
    """Replace any tag in ``path`` with ``tags`` as ID3v2.4."""
    from mutagen.id3 import COMM, ID3, TXXX, USLT, Frames
    from mutagen.id3 import error as id3_error

    tag = ID3()
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
    try:
        tag.save(str(path), v2_version=4)
    except (OSError, id3_error) as exc:
        raise EncodeError(f"Could not write the tags of {path}: {exc}") from exc


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
