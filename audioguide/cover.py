"""Cover art drawn in code: a calm gradient, soft rings, the title and the length."""

from __future__ import annotations

import hashlib
import io
import textwrap

#: Side of the square cover in pixels (podcast apps ask for 1400-3000).
SIZE = 1400

#: Kind -> (top colour, bottom colour); other kinds get a colour from their name.
PALETTE: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
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


def _colours(kind: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    if kind in PALETTE:
        return PALETTE[kind]
    h = hashlib.sha256(kind.encode()).digest()
    return (h[0] // 3, h[1] // 3, 60 + h[2] // 3), (120 + h[3] // 2, 120 + h[4] // 2, 140)


def render(kind: str, title: str, subtitle: str) -> bytes:
    """A square PNG cover for a session, as bytes."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    top, bottom = _colours(kind)
    gradient = Image.linear_gradient("L").resize((SIZE, SIZE))
    image = Image.composite(Image.new("RGB", (SIZE, SIZE), bottom),
                            Image.new("RGB", (SIZE, SIZE), top), gradient)
    rings = Image.new("L", (SIZE, SIZE), 0)
    draw_rings = ImageDraw.Draw(rings)
    centre = (SIZE // 2, int(SIZE * 0.40))
    for i, radius in enumerate(range(120, 620, 100)):
        box = (centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius)
        draw_rings.ellipse(box, outline=70 - i * 10, width=6)
    rings = rings.filter(ImageFilter.GaussianBlur(3))
    image = Image.composite(Image.new("RGB", (SIZE, SIZE), (255, 255, 255)), image, rings)

    draw = ImageDraw.Draw(image)
    heading = ImageFont.load_default(size=120)
    small = ImageFont.load_default(size=64)
    y = int(SIZE * 0.68)
    for line in textwrap.wrap(title, width=18):
        draw.text((SIZE // 2, y), line, font=heading, fill=(255, 255, 255), anchor="mm")
        y += 140
    draw.text((SIZE // 2, y + 10), subtitle, font=small, fill=(235, 240, 240), anchor="mm")
    draw.text((SIZE // 2, SIZE - 70), "audioguide", font=small, fill=(230, 235, 235),
              anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
