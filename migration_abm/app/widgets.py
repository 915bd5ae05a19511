"""Small display helpers. No ``solara.Markdown``: it loads KaTeX, which solara-assets does not ship
(a 404 and a console error offline)."""

from __future__ import annotations

import html
import re

import solara

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`(.+?)`")


def note(text: str, classes: list[str] | None = None) -> None:
    """A paragraph with **bold** and `code` spans (everything else escaped)."""
    body = _CODE.sub(r"<code>\1</code>", _BOLD.sub(r"<b>\1</b>", html.escape(text, quote=False)))
    solara.HTML(tag="p", unsafe_innerHTML=body, classes=classes or [], style={"margin": "4px 0"})
