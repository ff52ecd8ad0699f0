"""The GPU check: every GPU test, the benches at GPU size and one full-size notebook, in
at most 8 minutes on one H100, with the results in one JSON file.

Run through ``bench/gpu_check.sh`` (which installs carried wheels first, see there).
Each step runs as a subprocess under its own time limit; a step that fails or times out
is recorded with its exit status and the tail of its output, and the check goes on.

    bench/gpu_check.sh                          # on the GPU machine
    bench/gpu_check.sh --device cpu --quick     # the dry run on a CPU (same steps, small)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The whole check's budget (s) on the GPU: the device lends 15 minutes per task, and a
#: machine's start and the transfers take some of them.
BUDGET = 480


def steps(device: str, quick: bool, out_dir: Path) -> list[tuple[str, list[str], int]]:
    """(name, command, time limit in s) of every step, in order."""
    py = sys.executable
    cuda = device == "cuda"
    report = out_dir / "tour-report"
    size = ["-p", "n_members", "64"] if quick else ["-p", "n_members", "4096", "-p", "t_end",
                                                    "40.0"]
    return [
        ("environment", [py, "-c", _ENV], 60),
        ("gpu tests", [py, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                       "--no-header", "tests"], 150 if cuda else 300),
        ("integrate", [py, "bench/integrate.py", "--device", device, "--systems", "Lorenz",
                       "LorenzCoupled", "--rounds", "2", "--dysts-ics", "0",
                       *(["--ics", "256", "--steps", "200"] if quick else
                         ["--ics", "100000", "--steps", "1000"])], 90),
        ("gtf ensemble", [py, "bench/gtf_ensemble.py", "--device", device, "--threads", "0",
                          "--steps", "3" if quick else "10", "--members",
                          *(["1", "4"] if quick else ["1", "8", "32", "128"])], 90),
        ("crystals", [py, "bench/crystals.py", "--device", device,
                      *(["--quick"] if quick else ["--config", "full", "--repeats", "10"])],
         90),
        ("tour notebook, full size", [py, "-m", "labkit.reports.cli", "run",
                                      "notebooks/00_tour.ipynb", "-p", "device", device,
                                      *size, "--out", str(report)], 150),
    ]


_ENV = """
import json, platform, torch
info = {"python": platform.python_version(), "torch": torch.__version__,
        "cuda": torch.cuda.is_available()}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(gpu=p.name, memory_gib=round(p.total_memory / 2**30, 1),
                multiprocessors=p.multi_processor_count)
print(json.dumps(info))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="small sizes (the CPU dry run)")
    parser.add_argument("--out", default=str(REPO / "bench" / "gpu-results.json"))
    args = parser.parse_args()
    out = Path(args.out)
    work = out.parent / "gpu-check-work"
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": args.device,
               "quick": args.quick, "machine": platform.machine(), "steps": []}
    start = time.monotonic()
    for name, command, limit in steps(args.device, args.quick, work):
        left = BUDGET - (time.monotonic() - start)
        if args.device == "cuda" and left < 20:
            results["steps"].append({"name": name, "status": "skipped: budget spent"})
            continue
        limit = int(min(limit, left)) if args.device == "cuda" else limit
        print(f"== {name} (limit {limit} s): {' '.join(command)}", flush=True)
        t0 = time.monotonic()
        try:
            proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                                  timeout=limit)
            rc, output = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc = "timeout"
            output = (exc.stdout or b"").decode(errors="replace") if isinstance(
                exc.stdout, bytes) else (exc.stdout or "")
        seconds = round(time.monotonic() - t0, 1)
        # pytest exits 5 when every test is deselected: on a CPU the GPU tests all are
        ok = rc == 0 or (name == "gpu tests" and args.device == "cpu" and rc == 5)
        tail = output[-4000:]
        print(tail[-1500:], flush=True)
        results["steps"].append({"name": name, "command": command, "rc": rc, "ok": ok,
                                 "seconds": seconds, "output_tail": tail})
        out.write_text(json.dumps(results, indent=1))  # what ran so far survives a kill
    results["seconds"] = round(time.monotonic() - start, 1)
    results["all_ok"] = all(s.get("ok") for s in results["steps"])
    out.write_text(json.dumps(results, indent=1))
    print(f"== {sum(bool(s.get('ok')) for s in results['steps'])} of {len(results['steps'])} "
          f"steps ok in {results['seconds']} s; results in {out}")
    return 0 if results["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
