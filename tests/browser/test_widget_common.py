"""The widgets' shared browser module in Chromium, without JupyterLab: each assembled ES
module imports from a Blob URL (as anywidget loads ``_esm``) and exports its hooks, and
``fmt`` from ``widgets/common.js`` formats numbers as its comment documents."""

from __future__ import annotations

from labkit.widgets import widget_asset, widget_module
from labkit.widgets._assets import COMMON, MODULE_PARTS

_IMPORT_JS = """async (sources) => {
  const hooks = {};
  for (const [name, source] of Object.entries(sources)) {
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    try {
      const module = await import(url);
      hooks[name] = Object.keys(module.default).sort();
    } finally {
      URL.revokeObjectURL(url);
    }
  }
  return hooks;
}"""


def test_each_assembled_module_imports_from_a_blob_url_and_exports_its_hooks(page):
    page.set_content("<!doctype html><html><body></body></html>")
    sources = {widget: widget_module(widget) for widget in MODULE_PARTS}
    hooks = page.evaluate(_IMPORT_JS, sources)
    assert hooks == {"attractor": ["initialize", "render"], "crystal": ["render"],
                     "symmetry": ["render"]}
    assert page.console.real_errors() == []


def test_fmt_prints_missing_values_as_a_dash_and_infinities_as_infinity(page):
    page.set_content("<!doctype html><html><body></body></html>")
    page.add_script_tag(content=widget_asset(COMMON).read_text())  # a classic script: globals
    printed = page.evaluate(
        "() => [null, undefined, NaN, Infinity, -Infinity, 0, -0, 3, -0.5, 1234.5, 0.1234567,"
        " 12345, 0.001, -2e-7, '2.5'].map(fmt)")
    assert printed == ["–", "–", "–", "∞", "-∞", "0", "0", "3", "-0.5", "1235", "0.1235",
                       "1.23e+4", "1.00e-3", "-2.00e-7", "2.5"]
    assert page.console.real_errors() == []
