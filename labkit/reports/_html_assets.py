"""The fixed parts of a report page (split out of :mod:`labkit.reports._html` to keep it
short): nbconvert's cell loop inside labkit's page, the stylesheet, the ANSI colours of
tracebacks and the page's one script (code folding, figures drawn from compressed JSON).
"""

from __future__ import annotations

__all__ = ["ANSI", "CSS", "SCRIPT", "TEMPLATE"]

# The cell loop of nbconvert's ``lab`` template, inside labkit's own page.
TEMPLATE = """\
{%- extends 'base.html.j2' -%}
{%- block header -%}{{ resources.labkit_head }}{%- endblock header -%}
{%- block body_header -%}<main class="lk-cells">{%- endblock body_header -%}
{%- block body_footer -%}</main>{%- endblock body_footer -%}
{%- block footer -%}{{ resources.labkit_foot }}{%- endblock footer -%}
{% block input_group -%}
<details class="lk-code"{{ ' open' if 'labkit-failed' in cell.metadata.get('tags', []) }}>
<summary>{{ cell.metadata.get('labkit_summary', 'code') | escape_html }}</summary>
{{ super() }}
</details>
{%- endblock input_group %}
"""

ANSI = {"black": ("#3e424d", "#282c36"), "red": ("#e75c58", "#b22b31"),
         "green": ("#00a250", "#007427"), "yellow": ("#ddb62b", "#b27d12"),
         "blue": ("#208ffb", "#0065ca"), "magenta": ("#d160c4", "#a03196"),
         "cyan": ("#60c6c8", "#258f8f"), "white": ("#c5c1b4", "#a1a6b2")}

CSS = """\
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;--warn:#9a6700;--bad:#cf222e}
*{box-sizing:border-box} a{color:#0969da} img{max-width:100%} .lk-figure{width:100%}
body{margin:0;color:var(--fg);background:#fff;
 font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
.lk-header,.lk-cells{max-width:1100px;margin:0 auto;padding:0 24px}
.lk-header{padding-top:20px;padding-bottom:12px;border-bottom:1px solid var(--line)}
.lk-cells{padding-bottom:48px} .lk-status{margin:.2em 0 .6em} .lk-dirty{color:var(--warn)}
h1{font-size:1.9em;margin:.2em 0 .3em;line-height:1.2} h2{font-size:1.35em;margin:1.2em 0 .4em}
.lk-header h2{font-size:1.05em;margin:1em 0 .2em}
.lk-badge{display:inline-block;padding:1px 10px;border-radius:12px;font-weight:600;
 background:#fff8c5;color:var(--warn)}
.lk-completed .lk-badge{background:#dafbe1;color:#1a7f37}
.lk-failed .lk-badge{background:#ffebe9;color:var(--bad)}
.lk-meta{display:grid;grid-template-columns:max-content 1fr;gap:1px 16px;margin:.4em 0}
.lk-meta dt,.lk-default,.lk-help,.lk-note{color:var(--muted)} .lk-meta dd{margin:0}
table{border-collapse:collapse;margin:.4em 0;font-size:.95em}
th,td{text-align:left;padding:3px 14px 3px 0;border-bottom:1px solid var(--line);
 vertical-align:top}
tr.lk-changed td{background:#fff8c5}
code,pre,kbd,.lk-mono,summary{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,
 monospace;font-size:.9em}
pre{margin:0;white-space:pre-wrap;overflow-wrap:anywhere} .highlight pre{line-height:1.45}
button.lk-toggle{font:inherit;font-size:.9em;margin:.8em 0 0;padding:3px 12px;
 border:1px solid var(--line);border-radius:6px;background:var(--soft);cursor:pointer}
details.lk-code{margin:.9em 0 .2em}
details.lk-code>summary{cursor:pointer;color:var(--muted);white-space:nowrap;overflow:hidden;
 text-overflow:ellipsis}
details.lk-code .highlight,details.lk-added pre{background:var(--soft);
 border:1px solid var(--line);border-radius:6px;padding:8px 12px;margin:4px 0 0}
.jp-OutputArea-output{margin:.4em 0;overflow-x:auto} .jp-RenderedText pre{font-size:.85em}
[data-mime-type="application/vnd.jupyter.stderr"] pre{background:#fff5f5;padding:6px 10px;
 border-radius:6px}
.celltag_labkit-failed{border-left:4px solid var(--bad);padding-left:12px}
.jp-needs-dark-background{background:#111} .jp-RenderedHTMLCommon table{font-size:.85em}
.jp-RenderedMarkdown blockquote{margin:0;padding:0 1em;color:var(--muted);
 border-left:3px solid var(--line)}
a.anchor-link{visibility:hidden;margin-left:.3em;text-decoration:none}
:is(h1,h2,h3,h4,h5,h6):hover>a.anchor-link{visibility:visible}
.ansi-bold{font-weight:bold} .ansi-underline{text-decoration:underline}
@media print{button.lk-toggle{display:none}}
"""

# Folding: one button opens or closes every code cell. Figures: plotly.js is unpacked
# once, then every figure is drawn from its own compressed JSON.
SCRIPT = """\
(() => {
  const toggle = document.getElementById('lk-code-toggle');
  if (toggle) {
    toggle.hidden = false;
    toggle.addEventListener('click', () => {
      const open = toggle.getAttribute('aria-pressed') !== 'true';
      for (const d of document.querySelectorAll('details.lk-code')) d.open = open;
      toggle.setAttribute('aria-pressed', String(open));
      toggle.textContent = open ? 'hide all code' : 'show all code';
    });
  }
  const blobs = [...document.querySelectorAll('script[type="@FIGURE_TYPE@"]')];
  if (!blobs.length) { document.body.dataset.figures = 'drawn'; return; }
  const note = (text) => { for (const b of blobs) b.previousElementSibling.textContent = text; };
  if (typeof DecompressionStream === 'undefined') {
    note('This browser cannot unpack the figure (it needs DecompressionStream: ' +
         'Chrome 80, Firefox 113, Safari 16.4 or later).');
    return;
  }
  const unpack = (b64) => {
    const text = atob(b64.trim());
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Response(stream).text();
  };
  const plotly = async () => {
    if (window.Plotly) return window.Plotly;
    window.PlotlyConfig = {MathJaxConfig: 'local'};
    const code = document.createElement('script');
    code.textContent = await unpack(document.getElementById('lk-plotlyjs').textContent);
    document.head.appendChild(code);
    return window.Plotly;
  };
  const figures = Promise.all(blobs.map(async (b) => JSON.parse(await unpack(b.textContent))));
  Promise.all([plotly(), figures]).then(([Plotly, figs]) => Promise.all(figs.map((fig, i) => {
    const div = blobs[i].previousElementSibling;  // all start at once, in page order
    div.textContent = '';
    const config = Object.assign({responsive: true, displaylogo: false}, fig.config || {});
    return Plotly.newPlot(div, fig.data || [], fig.layout || {}, config);
  }))).then(() => { document.body.dataset.figures = 'drawn'; })
    .catch((err) => { note('The figure could not be drawn: ' + err); console.error(err); });
})();
"""
