"""Executed notebook -> one self-contained HTML file that renders with no network.

nbconvert's ``lab`` template links require.js, MathJax, mermaid and the widget manager
from CDNs. A report must render offline, so those references are removed: plotly
figures carry their own plotly.js (the ``notebook`` renderer inlines it once per file)
and need none of them. Live-widget outputs cannot render without their manager; their
plain-text fallback stays.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["external_references", "notebook_to_html"]

_EXTERNAL_SCRIPT = re.compile(
    r"<script\b[^>]*\bsrc\s*=\s*[\"']https?://[^\"']*[\"'][^>]*>\s*</script>", re.I | re.S
)
_EXTERNAL_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']https?://[^\"']*[\"'][^>]*>", re.I)
# A <script> block (of any type) whose body imports or loads from a CDN.
_SCRIPT_BLOCK = re.compile(r"<script\b[^>]*>.*?</script>", re.I | re.S)
_CDN_IMPORT = re.compile(r"(import\s*\(?\s*|from\s+|src\s*=\s*)[\"'`]https?://", re.I)
_EXTERNAL_ANY = re.compile(
    r"(?:<script\b[^>]*\bsrc|<link\b[^>]*\bhref|\bimport\s*\(?\s*|\bfrom\s+)\s*=?\s*[\"'`](https?://[^\"'`]+)",
    re.I,
)


def external_references(html: str) -> list[str]:
    """URLs that ``html`` would load from the network (scripts, stylesheets, imports)."""
    return _EXTERNAL_ANY.findall(html)


def _drop_cdn_blocks(html: str) -> str:
    def keep(match: re.Match[str]) -> str:
        block = match.group(0)
        return "" if _CDN_IMPORT.search(block) and len(block) < 20_000 else block

    return _SCRIPT_BLOCK.sub(keep, html)


def notebook_to_html(nb: Any, *, title: str = "labkit report") -> str:
    """Render an executed notebook as offline HTML (code, outputs, plotly figures)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    html, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    html = _EXTERNAL_SCRIPT.sub("", html)
    html = _EXTERNAL_LINK.sub("", html)
    return _drop_cdn_blocks(html)
