"""Executed notebook + its run -> one self-contained HTML document that renders offline.

The report reads as a document, not as a notebook dump:

- a header: the title (the notebook's first markdown ``# heading``), the run's status
  (a failure links its cell), git commit, dates, duration, device and versions; the
  parameters as the kernel received them, those changed from their defaults highlighted;
  a table of the values the notebook recorded with ``record(...)``;
- each code cell's source folded above its outputs (``<details>``: one click shows it,
  and one button shows all); the cells a run adds (papermill's injected values, labkit's
  check of them) and papermill's error banners appear only through the header;
- plotly figures drawn from their JSON (``application/vnd.plotly.v1+json``), compressed,
  with one gzip-compressed copy of plotly.js that the browser unpacks
  (``DecompressionStream``: Chrome 80, Firefox 113, Safari 16.4 and later).

The page loads nothing from the network: nbconvert's CDN scripts (require.js, MathJax,
mermaid, the widget manager) are left out, and any that outputs carry are removed.
Live-widget outputs cannot render without their manager; their plain-text fallback stays.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import datetime as _dt
import functools
import gzip
import json
import math
import re
from collections.abc import Mapping
from html import escape
from typing import Any

from labkit.reports._html_assets import ANSI, CSS, SCRIPT, TEMPLATE
from labkit.reports._params import GENERATED_TAGS, notebook_parameters
from labkit.reports._record import PARAMETERS_MIME, RECORD_MIME

__all__ = ["external_references", "notebook_to_html"]

PLOTLY_MIME = "application/vnd.plotly.v1+json"
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: ``type`` of the inert ``<script>`` elements holding a figure / plotly.js as base64 gzip.
FIGURE_TYPE = "application/vnd.labkit.figure+gzip"
PLOTLYJS_TYPE = "application/vnd.labkit.plotlyjs+gzip"
#: Largest change that storing a figure's float64 coordinates as float32 may make to any
#: of them, as a fraction of that array's span (max - min): a millionth of a figure's
#: width is far below a pixel. Arrays that would move more (a small range far from zero,
#: such as timestamps) stay float64; integer-valued ones are narrowed only when exact.
FLOAT32_TOLERANCE = 1e-6
#: Height of a figure whose layout sets none (plotly's notebook renderer uses the same), px.
DEFAULT_FIGURE_HEIGHT = 525
_FAILED_TAG = "labkit-failed"
_PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
#: Trace keys whose float64 arrays may be narrowed: positions, which plotly formats through
#: the axes for hover labels (values such as ``customdata`` are shown raw, so stay exact).
_COORDINATES = ("x", "y", "z")
_LONG_VALUE = 120
#: Recorded floats longer than this as ``repr`` are shown to 6 significant digits.
_SHORT_NUMBER = 9

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
_TITLE = re.compile(r"^#[ \t]+(.*?)[ \t#]*$")

def external_references(html: str) -> list[str]:
    """URLs that ``html`` would load from the network (scripts, stylesheets, imports)."""
    return _EXTERNAL_ANY.findall(html)


def _drop_cdn_blocks(html: str) -> str:
    def keep(match: re.Match[str]) -> str:
        block = match.group(0)
        return "" if _CDN_IMPORT.search(block) and len(block) < 20_000 else block

    return _SCRIPT_BLOCK.sub(keep, html)


def _gzip64(text: str) -> str:
    """``text`` as UTF-8, gzip-compressed (reproducibly: no timestamp), in base64."""
    return base64.b64encode(gzip.compress(text.encode(), compresslevel=9, mtime=0)).decode()


def _field(info: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``info[key]`` when it is a mapping, else an empty one (a ``run.json`` from another
    labkit version may lack a field or hold ``null``)."""
    value = info.get(key)
    return dict(value) if isinstance(value, Mapping) else {}


@functools.lru_cache(maxsize=1)
def _plotlyjs() -> str:
    """plotly.js, as the installed plotly package ships it, compressed for the page."""
    from plotly.offline import get_plotlyjs

    return _gzip64(get_plotlyjs())


# ---------------------------------------------------------------------------- figures

def _as_float32(values: Any) -> Any:
    """``values`` (float64) as float32 when that keeps them (:data:`FLOAT32_TOLERANCE`),
    else ``None``."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):
        narrow = values.astype(np.float32)
    finite = np.isfinite(values)
    if not np.array_equal(finite, np.isfinite(narrow)):
        return None  # a value beyond float32's range
    wide = values[finite]
    if wide.size == 0:
        return narrow
    moved = float(np.abs(wide - narrow[finite].astype(np.float64)).max())
    exact = bool(np.all(wide == np.round(wide)))
    allowed = 0.0 if exact else FLOAT32_TOLERANCE * float(wide.max() - wide.min())
    return narrow if moved <= allowed else None


def _narrowed_array(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """A plotly typed-array spec (``{"dtype": "f8", "bdata": ...}``) as float32 when sound."""
    import numpy as np

    if spec.get("dtype") != "f8" or not isinstance(spec.get("bdata"), str):
        return spec
    try:
        raw = base64.b64decode(spec["bdata"], validate=True)
    except (binascii.Error, ValueError):
        return spec
    if len(raw) % 8:
        return spec
    narrow = _as_float32(np.frombuffer(raw, dtype="<f8"))
    if narrow is None:
        return spec
    return {**spec, "dtype": "f4",
            "bdata": base64.b64encode(narrow.astype("<f4").tobytes()).decode()}


def _finite_json(value: Any) -> Any:
    """``value`` with non-finite floats as ``null`` (JSON has no NaN; plotly draws a gap)."""
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _compact_figure(figure: Mapping[str, Any]) -> dict[str, Any]:
    """A plotly figure's JSON with its float64 coordinates stored as float32 where sound."""
    fig = _finite_json(dict(figure))
    traces = fig.get("data")
    if isinstance(traces, list):
        for trace in traces:
            if not isinstance(trace, dict):
                continue
            for key in _COORDINATES:
                if isinstance(trace.get(key), dict):
                    trace[key] = _narrowed_array(trace[key])
    return fig


def _figure_html(figure: Any) -> str:
    """A figure's place in the page and its compressed JSON beside it."""
    if isinstance(figure, str):
        figure = json.loads(figure)
    fig = _compact_figure(figure)
    layout = _field(fig, "layout")
    height = layout.get("height")
    if isinstance(height, bool) or not isinstance(height, int | float) or height <= 0:
        height = DEFAULT_FIGURE_HEIGHT
    payload = json.dumps(fig, separators=(",", ":"), allow_nan=False)
    return (f'<div class="lk-figure" style="height:{float(height):g}px">drawing the figure '
            f'(needs JavaScript)</div><script type="{FIGURE_TYPE}">{_gzip64(payload)}</script>')


def _html_of(output: Mapping[str, Any]) -> str:
    html = output.get("data", {}).get("text/html", "")
    return "".join(html) if isinstance(html, list) else str(html)


def _loads_plotly(output: Mapping[str, Any]) -> bool:
    """An output that only loads plotly.js (what plotly's notebook renderer shows first)."""
    data = output.get("data", {})
    if PLOTLY_MIME in data or "text/html" not in data:
        return False
    head = _html_of(output)[:3000]
    return "window.PlotlyConfig" in head or "plotly.js v" in head


def _draws_plotly_html(output: Mapping[str, Any]) -> bool:
    """A figure as HTML only (no plotly JSON beside it): it needs plotly.js loaded first."""
    data = output.get("data", {})
    return (PLOTLY_MIME not in data and "text/html" in data and not _loads_plotly(output)
            and "Plotly.newPlot(" in _html_of(output))


# ---------------------------------------------------------------------------- the cells

@dataclasses.dataclass
class _Document:
    """The notebook, trimmed for the page, and what its header shows."""

    nb: Any
    title: str
    records: dict[str, tuple[Any, list[int]]]
    received: dict[str, Any] | None
    added: list[str]
    plotlyjs: bool  # the page must bring plotly.js (figures drawn from their JSON)
    failed: tuple[str, Any] | None  # anchor and execution count of the failing cell


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _title(nb: Any, fallback: str) -> str:
    """The first markdown ``# heading``; taken out of the body when it opens the first
    markdown cell (the header shows it)."""
    first = True
    for cell in nb.cells:
        if cell.cell_type != "markdown" or _PAPERMILL_ERROR_TAG in _tags(cell):
            continue
        lines = cell.source.splitlines()
        for number, line in enumerate(lines):
            if match := _TITLE.match(line):
                if first and not any(s.strip() for s in lines[:number]):
                    cell.source = "\n".join(lines[number + 1:]).lstrip("\n")
                return match.group(1).strip() or fallback
        first = False
    return fallback


def _summary(cell: Any, ended_early: bool) -> str:
    """The line that stands for a folded cell: its first line of code and its count."""
    lines = [s.strip() for s in cell.source.splitlines() if s.strip()]
    code = next((s for s in lines if not s.startswith("#")), lines[0] if lines else "")
    count = cell.get("execution_count")
    where = f"[{count}]" if count is not None else ("[not run]" if ended_early else "[ ]")
    return f"{where} {code}" if code else where


def _payload(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _document(nb: Any, run: Mapping[str, Any], fallback_title: str) -> _Document:
    import nbformat

    nb = copy.deepcopy(nb)
    status = run.get("status")
    error = _field(run, "error")
    failed: tuple[str, Any] | None = None
    for index, cell in enumerate(nb.cells):
        if not cell.get("id"):
            cell["id"] = f"labkit-{index}"
    index = error.get("cell_index")
    if status == "failed" and isinstance(index, int) and 0 <= index < len(nb.cells):
        cell = nb.cells[index]
        cell.setdefault("metadata", {})["tags"] = [*_tags(cell), _FAILED_TAG]
        failed = (f"cell-id={cell['id']}", cell.get("execution_count"))

    title = _title(nb, fallback_title)
    ended_early = status in ("failed", "interrupted", "killed")
    legacy = any(_draws_plotly_html(o) for c in nb.cells for o in c.get("outputs", []))
    records: dict[str, tuple[Any, list[int]]] = {}
    received: dict[str, Any] | None = None
    added: list[str] = []
    figures = 0
    cells = []
    for cell in nb.cells:
        tags = _tags(cell)
        if _PAPERMILL_ERROR_TAG in tags:
            continue  # the header says where the run failed
        outputs = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            data.pop(_WIDGET_MIME, None)  # no widget manager offline: the text fallback shows
            if RECORD_MIME in data:
                item = _payload(data[RECORD_MIME])
                records.pop(item["name"], None)
                records[item["name"]] = (item["value"], list(item.get("shape", [])))
            elif PARAMETERS_MIME in data:
                received = dict(_payload(data[PARAMETERS_MIME]))
            elif PLOTLY_MIME in data:
                figures += 1
                outputs.append(nbformat.from_dict({
                    "output_type": "display_data", "metadata": {},
                    "data": {"text/html": _figure_html(data[PLOTLY_MIME])}}))
            elif legacy or not _loads_plotly(output):
                outputs.append(output)
        if GENERATED_TAGS.intersection(tags) and _FAILED_TAG not in tags:
            if "injected-parameters" in tags:
                added.append(cell.source)
            continue
        if cell.cell_type == "code":
            if not cell.source.strip() and not outputs:
                continue
            cell.outputs = outputs
            cell.metadata["labkit_summary"] = _summary(cell, ended_early)
        cells.append(cell)
    nb.cells = cells
    return _Document(nb, title, records, received, added, figures > 0 and not legacy, failed)


# ---------------------------------------------------------------------------- the header

def _short(text: str, limit: int = _LONG_VALUE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _value_html(value: Any, *, number_format: str = "") -> str:
    """A value in a table cell; long ones are cut, with the whole value as a tooltip."""
    def show(v: Any) -> str:
        if number_format and isinstance(v, float) and len(repr(v)) > _SHORT_NUMBER:
            return format(v, number_format)
        if isinstance(v, list):
            return "[" + ", ".join(show(x) for x in v) + "]"
        return repr(v)

    text, whole = show(value), repr(value)
    tip = f' title="{escape(_short(whole, 2000))}"' if whole != text or len(text) > _LONG_VALUE else ""
    return f'<span class="lk-mono"{tip}>{escape(_short(text))}</span>'


def _when(stamp: Any) -> str:
    if not isinstance(stamp, str):
        return "-"
    try:
        moment = _dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.utcoffset() == _dt.timedelta(0):
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.isoformat(sep=" ")


def _duration(seconds: Any) -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _device(device: Any) -> str:
    if not isinstance(device, dict):
        return "-"
    name, where = device.get("name"), device.get("device")
    details = [str(where)] if where and where != name else []
    if device.get("memory_gib") is not None:
        details.append(f"{device['memory_gib']} GiB")
    if device.get("threads") is not None:
        details.append(f"{device['threads']} threads")
    text = str(name or where or "-")
    return f"{text} ({', '.join(details)})" if details else text


def _status_html(run: Mapping[str, Any], failed: tuple[str, Any] | None) -> str:
    status = str(run.get("status"))
    error = _field(run, "error")
    parts = [f'<span class="lk-badge">{escape(status)}</span>']
    if error and status != "completed":
        if failed is not None:
            anchor, count = failed
            cell = f"In [{count}]" if count is not None else "the failing cell"
            parts.append(f'at <a href="#{escape(anchor)}">{escape(cell)}</a>:')
        parts.append(f'<span class="lk-mono">{escape(str(error.get("ename", "")))}: '
                     f'{escape(_short(str(error.get("evalue", "")), 400))}</span>')
    html = f'<p class="lk-status lk-{escape(status)}">{" ".join(parts)}</p>'
    if error and failed is None and error.get("traceback"):
        html += ('<details class="lk-added"><summary>traceback</summary>'
                 f'<pre>{escape(str(error["traceback"]))}</pre></details>')
    return html


def _meta_html(run: Mapping[str, Any]) -> str:
    git = _field(run, "git")
    commit = git.get("commit")
    if commit:
        source = f'<span class="lk-mono" title="{escape(str(commit))}">{escape(str(commit)[:12])}</span>'
        if git.get("dirty"):
            source += ' <span class="lk-dirty">+ uncommitted changes</span>'
    else:
        source = "not in a git checkout"
    versions = _field(run, "versions")
    stack = ", ".join(f"{n} {versions[n]}" for n in ("torch", "python") if versions.get(n))
    labkit = f"labkit {run.get('labkit_version', '-')}" + (f" ({stack})" if stack else "")
    rows = [("notebook", f'<span class="lk-mono">{escape(str(run.get("notebook", "-")))}</span>'),
            ("git commit", source),
            ("started", escape(_when(run.get("started")))),
            ("finished", escape(_when(run.get("finished")))),
            ("duration", escape(_duration(run.get("duration_s")))),
            ("device", escape(_device(run.get("device"))) + (
                f' on {escape(str(run["host"]))}' if run.get("host") else "")),
            ("version", escape(labkit))]
    return '<dl class="lk-meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=repr) == json.dumps(b, sort_keys=True,
                                                                     default=repr)


def _parameters_html(nb: Any, values: Mapping[str, Any], overrides: Mapping[str, Any],
                     added: list[str]) -> str:
    try:
        declared = notebook_parameters(nb)
    except Exception:  # a notebook without a readable parameters cell still gets a report
        declared = {}
    names = list(values) + [n for n in declared if n not in values]
    if not names:
        return ""
    rows, changed_count = [], 0
    for name in names:
        param = declared.get(name)
        value = values[name] if name in values else param.default if param else None
        changed = name in overrides and (param is None or not _same(value, param.default))
        changed_count += changed
        cell = _value_html(value)
        if changed and param is not None:
            cell += f' <span class="lk-default">(default {_value_html(param.default)})</span>'
        help_text = " ".join(t for t in (param.help, f"[{param.constraint}]"
                                          if param.constraint else "") if t) if param else ""
        row_class = ' class="lk-changed"' if changed else ""
        rows.append(f'<tr{row_class}><td class="lk-mono">'
                    f'{escape(name)}</td><td>{cell}</td><td class="lk-help">'
                    f'{escape(help_text)}</td></tr>')
    note = (f' <span class="lk-note">({changed_count} changed from the default, '
            'highlighted)</span>' if changed_count else
            ' <span class="lk-note">(all defaults)</span>')
    html = (f"<h2>Parameters{note}</h2><table><thead><tr><th>name</th><th>value</th>"
            f"<th>description</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
    for source in added:
        html += ('<details class="lk-added"><summary>values the run set (the cell papermill '
                 f'added)</summary><pre>{escape(source)}</pre></details>')
    return html


def _records_html(records: Mapping[str, tuple[Any, list[int]]]) -> str:
    if not records:
        return ""
    rows = "".join(
        f'<tr><td class="lk-mono">{escape(name)}</td>'
        f'<td>{_value_html(value, number_format=".6g")}</td>'
        f'<td class="lk-mono">{escape(" x ".join(map(str, shape)) or "scalar")}</td></tr>'
        for name, (value, shape) in records.items())
    return ("<h2>Recorded values</h2><table><thead><tr><th>name</th><th>value</th>"
            f"<th>shape</th></tr></thead><tbody>{rows}</tbody></table>")


def _header_html(doc: _Document, run: Mapping[str, Any]) -> str:
    values = _field(run, "parameters") if "parameters" in run else (doc.received or {})
    overrides = _field(run, "overrides")
    parts = [f"<h1>{escape(doc.title)}</h1>"]
    if run:
        parts += [_status_html(run, doc.failed), _meta_html(run)]
    parts += [_parameters_html(doc.nb, values, overrides, doc.added), _records_html(doc.records)]
    if any(c.cell_type == "code" for c in doc.nb.cells):
        parts.append('<button type="button" class="lk-toggle" id="lk-code-toggle" '
                     'aria-pressed="false" hidden>show all code</button>')
    return '<header class="lk-header">' + "".join(parts) + "</header>"


@functools.lru_cache(maxsize=1)
def _stylesheet() -> str:
    from pygments.formatters import HtmlFormatter

    ansi = []
    for colour, (intense, normal) in ANSI.items():
        for kind, prop in (("fg", "color"), ("bg", "background-color")):
            ansi.append(f".ansi-{colour}-{kind}{{{prop}:{normal}}}"
                        f".ansi-{colour}-intense-{kind}{{{prop}:{intense}}}")
    return CSS + "\n".join(ansi) + "\n" + HtmlFormatter(style="default").get_style_defs(
        ".highlight")


def notebook_to_html(nb: Any, *, title: str = "labkit report",
                     run: Mapping[str, Any] | None = None) -> str:
    """Render an executed notebook and its run as one offline HTML document.

    Args:
        nb: the executed notebook (``nbformat``); it is not changed.
        title: the title when the notebook has no markdown ``# heading`` (a run passes the
            notebook's file stem).
        run: the run's ``run.json`` contents (status, error, parameters, overrides, git,
            dates, duration, device, versions) for the header; without it the header
            shows the title, the parameters the kernel received and the recorded values.

    Returns:
        The page: it loads nothing from the network (:func:`external_references` finds
        no URL in it).
    """
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    run = dict(run or {})
    doc = _document(nb, run, title)
    head = ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="generator" content="labkit {escape(str(run.get("labkit_version", "")))}">\n'
            f"<title>{escape(doc.title)}</title>\n<style>\n{_stylesheet()}</style>\n</head>\n"
            f"<body>\n{_header_html(doc, run)}\n")
    foot = ""
    if doc.plotlyjs:
        foot += f'<script type="{PLOTLYJS_TYPE}" id="lk-plotlyjs">{_plotlyjs()}</script>\n'
    foot += f"<script>\n{SCRIPT.replace('@FIGURE_TYPE@', FIGURE_TYPE)}</script>\n</body>\n</html>\n"
    exporter = HTMLExporter(
        template_name="lab", template_file="labkit-report.html.j2",
        extra_loaders=[DictLoader({"labkit-report.html.j2": TEMPLATE})],
        exclude_input_prompt=True, exclude_output_prompt=True)
    html, _ = exporter.from_notebook_node(
        doc.nb, resources={"metadata": {"name": doc.title}, "labkit_head": head,
                           "labkit_foot": foot})
    html = _EXTERNAL_SCRIPT.sub("", html)
    html = _EXTERNAL_LINK.sub("", html)
    return _drop_cdn_blocks(html)
