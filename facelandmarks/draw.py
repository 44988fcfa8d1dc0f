"""Annotated pictures for the CLI: boxes, scores and landmarks drawn on a copy of the image."""
from __future__ import annotations

from PIL import Image, ImageDraw

from .pipeline.results import Face


def draw_faces(image: Image.Image, faces: list[Face]) -> Image.Image:
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    r = max(1.5, min(out.size) / 300)
    for face in faces:
        x0, y0, x1, y1 = face.box
        draw.rectangle((x0, y0, x1, y1), outline=(0, 255, 0), width=max(1, int(r)))
        draw.text((x0, max(0, y0 - 12)), face.label(), fill=(0, 255, 0))
        for x, y in face.landmarks:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 60, 60))
    return out
