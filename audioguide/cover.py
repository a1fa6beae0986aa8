"""Cover art drawn in code: a calm gradient, soft rings, the title and the length.

Every line of text is white on a background that keeps at least the WCAG AA
contrast for text (4.5:1): the lower part, where the text sits, is shaded
towards a deep tone of the kind's colour, as deep as that colour needs.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image as PILImage
    from PIL import ImageFont

#: Side of the square cover in pixels (podcast apps ask for 1400-3000).
SIZE = 1400
#: WCAG 2 contrast ratio the text keeps against every pixel behind it.
MIN_CONTRAST = 4.5
#: Text colour.
WHITE = (255, 255, 255)

Colour = tuple[int, int, int]

#: Kind -> (top colour, bottom colour); other kinds get a colour from their name.
PALETTE: dict[str, tuple[Colour, Colour]] = {
    "breath": ((38, 70, 83), (42, 157, 143)),
    "body-scan": ((61, 64, 91), (129, 178, 154)),
    "congruence": ((69, 48, 92), (224, 122, 95)),
    "grounding": ((52, 78, 65), (163, 177, 138)),
    "check-in": ((40, 54, 85), (141, 153, 174)),
    "walking": ((33, 87, 50), (149, 213, 178)),
    "journal": ((84, 56, 41), (221, 161, 94)),
    "empathy": ((92, 46, 70), (229, 152, 155)),
    "boundaries": ((29, 53, 87), (69, 123, 157)),
}

#: The shade behind the text starts fading in here (fraction of the height) ...
_SHADE_FROM = 0.36
#: ... and is at full strength from here down, above the first line of text.
_SHADE_FULL = 0.63
#: Margin over MIN_CONTRAST when choosing the shade, for the soft edges of the rings.
_MARGIN = 1.1


@dataclass(frozen=True)
class Line:
    """One line of text on a cover, centred horizontally at ``y``."""

    text: str
    size: int
    y: int
    fill: Colour = WHITE


def luminance(colour: Colour) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = map(linear, colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: Colour, b: Colour) -> float:
    """WCAG 2 contrast ratio of two colours, 1 to 21."""
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _colours(kind: str) -> tuple[Colour, Colour]:
    if kind in PALETTE:
        return PALETTE[kind]
    h = hashlib.sha256(kind.encode()).digest()
    return (h[0] // 3, h[1] // 3, 60 + h[2] // 3), (120 + h[3] // 2, 120 + h[4] // 2, 140)


def _mix(a: Colour, b: Colour, weight: float) -> Colour:
    """``a`` moved ``weight`` of the way to ``b``."""
    return (round(a[0] + (b[0] - a[0]) * weight), round(a[1] + (b[1] - a[1]) * weight),
            round(a[2] + (b[2] - a[2]) * weight))


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def _shade(kind: str) -> tuple[Colour, float]:
    """(colour, strength) of the shade behind the text: the least that keeps the contrast."""
    top, bottom = _colours(kind)
    ink = _mix(top, (0, 0, 0), 0.5)
    strength = 0.55
    # The lightest point of the shaded part is the bottom of the gradient.
    while strength < 1 and contrast(WHITE, _mix(bottom, ink, strength)) < MIN_CONTRAST * _MARGIN:
        strength = min(1.0, strength + 0.05)
    return ink, strength


def layout(title: str, subtitle: str) -> list[Line]:
    """The lines of text of a cover, top to bottom."""
    lines = []
    y = int(SIZE * 0.68)
    for text in textwrap.wrap(title, width=18):
        lines.append(Line(text, 120, y))
        y += 140
    lines.append(Line(subtitle, 64, y + 10))
    lines.append(Line("audioguide", 64, SIZE - 70))
    return lines


def background(kind: str) -> PILImage.Image:
    """The cover without its text: gradient, rings, and the shade the text sits on."""
    from PIL import Image, ImageDraw, ImageFilter

    top, bottom = _colours(kind)
    gradient = Image.linear_gradient("L").resize((SIZE, SIZE))
    image = Image.composite(Image.new("RGB", (SIZE, SIZE), bottom),
                            Image.new("RGB", (SIZE, SIZE), top), gradient)
    # 0 above the text zone, rising to 255 where the text starts.
    ramp = Image.new("L", (1, SIZE))
    start, full = int(SIZE * _SHADE_FROM), int(SIZE * _SHADE_FULL)
    ramp.putdata([round(255 * _smoothstep((y - start) / (full - start))) for y in range(SIZE)])
    ramp = ramp.resize((SIZE, SIZE))

    rings = Image.new("L", (SIZE, SIZE), 0)
    draw_rings = ImageDraw.Draw(rings)
    centre = (SIZE // 2, int(SIZE * 0.40))
    for i, radius in enumerate(range(120, 620, 100)):
        box = (centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius)
        draw_rings.ellipse(box, outline=70 - i * 10, width=6)
    rings = rings.filter(ImageFilter.GaussianBlur(3))
    # The rings fade out where the text goes.
    rings = Image.composite(Image.new("L", (SIZE, SIZE), 0), rings, ramp)
    image = Image.composite(Image.new("RGB", (SIZE, SIZE), WHITE), image, rings)

    ink, strength = _shade(kind)
    image = Image.composite(Image.new("RGB", (SIZE, SIZE), ink), image,
                            ramp.point(lambda v: round(v * strength)))
    return image


def text_box(line: Line) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the pixels ``line`` covers."""
    from PIL import Image, ImageDraw

    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = draw.textbbox((SIZE // 2, line.y), line.text,
                                             font=_font(line.size), anchor="mm")
    return int(left), int(top), int(right), int(bottom)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


#: The PNG text chunk that records what a cover shows (so an unchanged one is kept).
SHOWS = "audioguide-cover"


@functools.lru_cache(maxsize=32)
def render(kind: str, title: str, subtitle: str) -> bytes:
    """A square PNG cover for a session, as bytes (drawn once per process for the same
    words: a batch's weeks often share their cover)."""
    from PIL import ImageDraw, PngImagePlugin

    image = background(kind)
    draw = ImageDraw.Draw(image)
    for line in layout(title, subtitle):
        draw.text((SIZE // 2, line.y), line.text, font=_font(line.size),
                  fill=line.fill, anchor="mm")
    info = PngImagePlugin.PngInfo()
    info.add_itxt(SHOWS, _shows(kind, title, subtitle))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True, pnginfo=info)
    return out.getvalue()


def _shows(kind: str, title: str, subtitle: str) -> str:
    from audioguide import __version__

    return json.dumps([__version__, kind, title, subtitle])


def write(path: Path, kind: str, title: str, subtitle: str) -> None:
    """Write the cover to ``path``, unless the cover there already shows exactly this."""
    from audioguide.publish import atomic_write

    data = wanted(path, kind, title, subtitle)
    if data is not None:
        atomic_write(path, data)


def wanted(path: Path, kind: str, title: str, subtitle: str) -> bytes | None:
    """The cover to write to ``path``, or None when the cover there already shows exactly
    this (drawing one takes a third of a second; a re-run of a big batch would redraw
    hundreds)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as existing:
            if existing.info.get(SHOWS) == _shows(kind, title, subtitle):
                return None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        pass  # missing or not a cover of ours: draw it
    return render(kind, title, subtitle)


#: Side of the small copy of a cover that a page shows and a lock screen uses.
ICON_SIZE = 192


def icon(png: bytes, side: int = ICON_SIZE) -> bytes:
    """A small square copy of the cover ``png`` (a page shows it at 72 px; the 1400 px
    cover would cost a phone 150 kB before anything is played)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        small = image.convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()
