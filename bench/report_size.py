"""Size of the tour's report.html and what it is made of, against nbconvert's export.

Runs notebooks/00_tour.ipynb with its defaults (as ``labkit run`` does: 1-2 minutes on 2
cores), then splits its report.html into plotly.js, figures, code, text outputs,
stylesheets and the rest (header, markdown, page structure). The peer is nbconvert's
plain ``lab`` HTML export of the same executed notebook (what ``jupyter nbconvert --to
html`` writes), split the same way. Prints both and the ratio of their sizes. This is a
script, not a test:

    .venv/bin/python bench/report_size.py                       # run the tour, measure
    .venv/bin/python bench/report_size.py --run reports/00_tour  # an existing run folder

``--run`` measures a folder written earlier (by another labkit version, say) without
running anything.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOUR = REPO / "notebooks" / "00_tour.ipynb"

_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
_CODE = re.compile(r'<div class="highlight[^"]*">\s*<pre>.*?</pre>\s*</div>', re.S)
_TEXT = re.compile(r'<div class="jp-RenderedText[^"]*"[^>]*>\s*<pre>.*?</pre>\s*</div>', re.S)
_STYLE = re.compile(r"<style\b[^>]*>.*?</style>", re.S | re.I)
PARTS = ("plotly.js", "figures", "code", "text outputs", "stylesheets", "other scripts", "rest")


def _bytes(text: str) -> int:
    return len(text.encode())


def breakdown(html: str) -> dict[str, int]:
    """Bytes of ``html`` by part (:data:`PARTS`); they add up to the whole page."""
    parts = dict.fromkeys(PARTS, 0)

    def script(match: re.Match[str]) -> str:
        attributes, body = match.group(1), match.group(2)
        if "plotlyjs+gzip" in attributes or body.lstrip().startswith("/**\n* plotly.js v"):
            part = "plotly.js"
        elif "figure+gzip" in attributes or "window.PLOTLYENV" in body:  # labkit, plotly
            part = "figures"
        else:
            part = "other scripts"
        parts[part] += _bytes(match.group(0))
        return ""

    rest = _SCRIPT.sub(script, html)
    for part, pattern in (("code", _CODE), ("text outputs", _TEXT), ("stylesheets", _STYLE)):
        parts[part] = sum(_bytes(m.group(0)) for m in pattern.finditer(rest))
        rest = pattern.sub("", rest)
    parts["rest"] = _bytes(rest)
    assert sum(parts.values()) == _bytes(html)
    return parts


def nbconvert_lab(executed: Path) -> str:
    """The peer: nbconvert's ``lab`` HTML export of the executed notebook, as it is."""
    import nbformat
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter(template_name="lab").from_notebook_node(
        nbformat.read(executed, as_version=4))
    return html


def _print(name: str, html: str) -> int:
    total = _bytes(html)
    print(f"{name}: {total:,} B ({total / 1e6:.2f} MB)")
    for part, size in breakdown(html).items():
        print(f"  {part:<14} {size:>11,} B  {100 * size / total:5.1f} %")
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="measure this run folder instead of "
                                                  "running the tour")
    args = parser.parse_args()
    from labkit.reports import read_run, run_notebook

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.run or run_notebook(TOUR, out_dir=Path(tmp) / "tour").out_dir
        info = read_run(folder)
        print(f"{info['notebook']} ({info['status']}, labkit {info['labkit_version']}, "
              f"plotly {info['versions'].get('plotly')}) on {platform.machine()}, "
              f"python {platform.python_version()}")
        ours = _print("labkit report.html", (folder / "report.html").read_text())
        if "report_bytes" in info:
            print(f"  run.json report_bytes: {info['report_bytes']:,}")
        peer = _print("nbconvert lab export", nbconvert_lab(folder / info["output_notebook"]))
    print(f"labkit / nbconvert lab: {ours / peer:.3f} ({peer / ours:.2f}x smaller)")
    print(json.dumps({"labkit_bytes": ours, "nbconvert_lab_bytes": peer}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
