"""Static HTML pages of result images (dominate)."""
from __future__ import annotations

from pathlib import Path

import dominate
from dominate.tags import a, br, h3, img, p, pre, table, td, tr


class HTMLPage:
    """An ``index.html`` in ``web_dir`` showing images stored in ``web_dir/images``."""

    def __init__(self, web_dir: str | Path, title: str) -> None:
        self.web_dir = Path(web_dir)
        self.image_dir = self.web_dir / "images"
        self.image_dir.mkdir(parents=True, exist_ok=True)
        self.doc = dominate.document(title=title)

    def add_header(self, text: str) -> None:
        with self.doc:
            h3(text)

    def add_text(self, text: str) -> None:
        with self.doc:
            pre(text)

    def add_images(self, images: list[str], captions: list[str], width: int = 256) -> None:
        """One table row of images (paths relative to ``images/``) with captions."""
        row_table = table(border=1, style="table-layout: fixed;")
        self.doc.add(row_table)
        with row_table:
            with tr():
                for image, caption in zip(images, captions, strict=True):
                    with td(style="word-wrap: break-word;", halign="center", valign="top"):
                        with p():
                            with a(href=f"images/{image}"):
                                img(style=f"width:{width}px", src=f"images/{image}")
                            br()
                            p(caption)

    def save(self) -> Path:
        path = self.web_dir / "index.html"
        path.write_text(self.doc.render())
        return path
