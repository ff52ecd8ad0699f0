"""Screenshots of every labkit widget and of the tour report, from real runs.

    .venv/bin/python docs/gallery/make_gallery.py   # about 3-4 min on 2 cores

1. runs the tour (``labkit run notebooks/00_tour.ipynb``, its small defaults) and takes the
   top of its report (``tour-report.png``);
2. starts JupyterLab on a notebook that opens each widget on real data (the catalogue's
   Lorenz-63, a free run against its truth, a perov-5 crystal relaxing from noise, LieGAN
   learning so(2)) and takes each rendered widget (``<widget>.png``).

Chromium is Debian's (``make browser``); the browser harness is the tests' own
(tests/browser/conftest.py). The README's gallery shows the images.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.browser.conftest import Lab, launch_chromium, nonblank, start_lab  # noqa: E402

OUT = Path(__file__).resolve().parent

#: (file name, code that displays the widget as the cell's last expression)
WIDGETS = [
    ("attractor-viewer", "AttractorViewer(system='Lorenz', n_ic=256, periods=8.0, color_by='speed')"),
    ("series-viewer",
     "AttractorViewer.from_series({'truth': truth, 'model': model}, codes={'model': codes},\n"
     "                            readout='a free run (model) against the held-out truth')"),
    ("crystal-viewer", "CrystalViewer(frames, compare=truth_crystal)"),
    ("symmetry-dashboard",
     "SymmetryDashboard(dataset='so2_invariant', device='cpu', config={'steps': 1500})"),
]

SETUP = """\
import numpy as np
import torch

from labkit.atoms.io import sample_crystals
from labkit.dynamics import reconstruction_data
from labkit.widgets import AttractorViewer, CrystalViewer, SymmetryDashboard, as_crystal

torch.set_num_threads(1)
data = reconstruction_data("Lorenz", n_steps=3000, n_test=3000, seed=0)
truth = data.test[:2000].numpy()
model = data.test[1000:3000].numpy() * 1.05  # a stand-in free run: the same attractor, offset
codes = (model[:, 0] > 0).astype(int) + 2 * (model[:, 2] > 25)
truth_crystal = as_crystal(sample_crystals("perov_5")[1])
rng = np.random.default_rng(0)  # frames from noise to the truth: coordinates and cell relax
s = np.linspace(0.0, 1.0, 12)[:, None, None]
frames = {"species": truth_crystal.species,
          "frac": (1 - s) * rng.uniform(size=truth_crystal.frac.shape) + s * truth_crystal.frac,
          "lattice": (1.6 - 0.6 * s) * truth_crystal.lattice}
"""


def gallery_notebook(path: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cells = [new_code_cell(SETUP)] + [new_code_cell(code) for _, code in WIDGETS]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, str(path))


def tour_report(tmp: Path) -> Path:
    import subprocess

    out = tmp / "tour"
    subprocess.run([str(Path(sys.executable).with_name("labkit")), "run",
                    str(REPO / "notebooks/00_tour.ipynb"), "--out", str(out), "--quiet"],
                   check=True)
    return out / "report.html"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        report = tour_report(tmp)
        source = tmp / "gallery"
        source.mkdir()
        gallery_notebook(source / "gallery.ipynb")
        with start_lab(tmp / "lab", {"gallery": source}) as server, launch_chromium() as chromium:
            context = chromium.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(report.as_uri())
            page.wait_for_function("() => document.body.dataset.figures === 'drawn'",
                                   timeout=120_000)
            page.screenshot(path=str(OUT / "tour-report.png"))
            print(f"tour-report.png ({report.stat().st_size / 1e6:.2f} MB report)")

            lab = Lab(page, server)
            lab.open("gallery/gallery.ipynb")
            lab.run_all(timeout_s=600)
            time.sleep(8)  # the views draw their first frames; the dashboard trains a while
            outputs = page.locator(".jp-Cell .jp-OutputArea-output")
            shots = [o for o in outputs.all() if o.locator("canvas, svg").count()]
            if len(shots) != len(WIDGETS):
                raise RuntimeError(f"expected {len(WIDGETS)} widget outputs, found {len(shots)}")
            for (name, _), output in zip(WIDGETS, shots, strict=True):
                output.scroll_into_view_if_needed()
                time.sleep(2)
                png = output.screenshot(path=str(OUT / f"{name}.png"))
                if not nonblank(png):
                    raise RuntimeError(f"{name}: the screenshot is blank")
                print(f"{name}.png")
            context.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
