"""The README's gallery shows pictures that exist: every image it links under docs/ is a
PNG holding a picture (several colours), made by docs/gallery/make_gallery.py."""

from __future__ import annotations

import re

from PIL import Image


def test_every_gallery_image_the_readme_shows_exists_and_is_a_picture(repo):
    text = (repo / "README.md").read_text()
    section = text[text.index("## Gallery"):text.index("## Reports and sweeps")]
    images = re.findall(r"\]\((docs/gallery/[\w.-]+\.png)\)", section)
    assert len(images) == 5
    for name in images:
        with Image.open(repo / name) as image:
            assert image.format == "PNG" and min(image.size) >= 200, name
            colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
            assert colours is None or len(colours) >= 32, f"{name} is (nearly) blank"
