"""The ``labkit`` command.

::

    labkit [--debug] run NOTEBOOK [-p NAME VALUE]... [-f params.yaml] [--out DIR] [--timeout S]
    labkit [--debug] sweep NOTEBOOK --grid grid.yaml [--workers N] [--scheduler ADDRESS]
                     [--out DIR] [--status]
    labkit list [FOLDER_OR_NOTEBOOK]...

Exit status: 0 on success, 1 when a run (or any point of a sweep) failed, 2 for bad
input (a named error, before anything starts: unknown or out-of-range parameters,
missing or malformed files and folders, an unreachable scheduler, a busy output folder),
128 + the signal's number when a run or sweep is interrupted (130 for Ctrl-C, 143 for
SIGTERM). ``labkit serve`` exits 0 when stopped by Ctrl-C or SIGTERM (its normal way to
stop). ``--debug`` adds the traceback to a named error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError, RunFailedError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labkit", description="Run labkit notebooks headlessly as parameterized reports; regenerate the catalogue's tables."
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an input error, not only its message")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute a notebook and write a report folder")
    run.add_argument("notebook", type=Path)
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"),
                     help="set a parameter; VALUE is read as YAML 1.2 (3, 0.5, 1e-3, true, "
                          "[1, 2], text; yes/no and dates stay text)")
    run.add_argument("-f", "--parameters-file", type=Path,
                     help="a YAML mapping of parameters (-p values win)")
    run.add_argument("--out", type=Path, help="run folder (default reports/<notebook stem>)")
    run.add_argument("--timeout", type=float, help="limit in seconds for any one cell")
    run.add_argument("--quiet", action="store_true", help="no cell-by-cell progress bar")

    sw = sub.add_parser("sweep", help="run a notebook over a grid of parameters on dask")
    sw.add_argument("notebook", type=Path)
    sw.add_argument("--grid", type=Path, required=True,
                    help="YAML: parameter name -> list of values (a single value is fixed)")
    sw.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    sw.add_argument("--scheduler", help="address of an existing dask scheduler")
    sw.add_argument("--out", type=Path, help="sweep folder (default reports/<stem>-sweep)")
    sw.add_argument("--timeout", type=float, help="limit in seconds for any one cell")
    sw.add_argument("--status", action="store_true",
                    help="only show each point's state (done, stale, failed, interrupted, "
                         "killed, running, corrupt, missing); run nothing")
    sw.add_argument("--connect-timeout", type=float, default=10.0,
                    help="seconds to wait for --scheduler to answer (default 10)")

    serve = sub.add_parser("serve", help="serve a labkit app in the browser (Panel)")
    serve.add_argument("app", choices=sorted(APPS), help="which app")
    serve.add_argument("--port", type=int, default=5006, help="port (default 5006)")
    serve.add_argument("--address", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--show", action="store_true", help="open a browser tab")
    serve.add_argument("--first", default=None, metavar="NAME",
                       help="what the app shows first: a system for 'attractors' (default "
                       "Lorenz), a data set for 'symmetry' (default so2_invariant)")
    sub.add_parser("table", add_help=False,
                   help="regenerate the catalogue's invariants tables "
                        "(labkit table --help for its options)")
    ls = sub.add_parser("list", help="show notebooks with their parameters and defaults")
    ls.add_argument("paths", nargs="*", type=Path, default=[Path("notebooks")])
    return parser


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    from labkit.reports._params import parse_value
    from labkit.reports._sweep import _yaml_mapping

    values: dict[str, Any] = {}
    if args.parameters_file is not None:
        values.update(_yaml_mapping(args.parameters_file, "parameters file"))
    for name, text in args.parameter:
        values[name] = parse_value(text)
    return values


def _cmd_run(args: argparse.Namespace) -> int:
    from labkit.reports._run import run_notebook

    result = run_notebook(args.notebook, _parameters(args), out_dir=args.out,
                          timeout=args.timeout, progress=not args.quiet)
    print(f"completed in {result.duration_s:.1f} s: {result.report} "
          f"({result.report.stat().st_size / 1e6:.2f} MB)")
    for name, value in result.records.items():
        print(f"  {name} = {value!r}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from labkit.reports._sweep import sweep, sweep_status

    if args.status:
        rows = sweep_status(args.notebook, args.grid, out_dir=args.out)
        counts: dict[str, int] = {}
        for point, key, state in rows:
            counts[state.state] = counts.get(state.state, 0) + 1
            print(f"{state.state:<12} {key}  {point}  ({state.reason})")
        print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f" of {len(rows)} points")
        return 0
    result = sweep(args.notebook, args.grid, out_dir=args.out, workers=args.workers,
                   scheduler=args.scheduler, timeout=args.timeout, progress=True,
                   connect_timeout=args.connect_timeout)
    print(f"{len(result.ran)} run(s) executed, {len(result.skipped)} already complete, "
          f"{len(result.failed)} failed; results in {result.out_dir / 'results.nc'}")
    return 1 if result.failed else 0


#: Apps of ``labkit serve``: name -> (module, function, the option --first sets).
APPS = {"attractors": ("labkit.widgets._attractor_panel", "serve_attractors", "system"),
        "symmetry": ("labkit.widgets._symmetry_panel", "serve_symmetry", "dataset"),
        "crystals": ("labkit.widgets._crystal", "serve_crystals", "dataset")}


def _cmd_serve(args: argparse.Namespace) -> int:
    import importlib

    module, function, first = APPS[args.app]
    serve = getattr(importlib.import_module(module), function)
    options = {first: args.first} if args.first else {}
    print(f"labkit: serving {args.app} on http://{args.address}:{args.port}/{args.app} "
          "(Ctrl-C stops)", flush=True)
    serve(port=args.port, address=args.address, show=args.show, **options)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from labkit.reports._params import notebook_parameters

    found = []
    for path in args.paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        elif path.is_file():
            found.append(path)
        else:
            raise LabkitError(f"{str(path)!r} is neither a notebook nor a folder")
    if not found:
        print("no notebooks found")
    for nb in found:
        print(nb)
        try:
            params = notebook_parameters(nb)  # a bad notebook is one line, not the end
        except LabkitError as exc:
            print(f"  ({exc})")
            continue
        for p in params.values():
            print(f"  {p.describe()}")
    return 0


def _cmd_table(argv: Sequence[str]) -> int:
    """``labkit table ...``: the catalogue's own parser takes every option after it."""
    from labkit.dynamics.catalogue._table_cli import main as table_main

    return table_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``labkit`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["table"]:
        return _cmd_table(argv[1:])
    args = _parser().parse_args(argv)
    commands = {"run": _cmd_run, "sweep": _cmd_sweep, "list": _cmd_list,
                "serve": _cmd_serve}
    try:
        return commands[args.command](args)
    except RunFailedError as exc:
        print(f"labkit: run failed: {exc}", file=sys.stderr)
        return 1
    except LabkitError as exc:
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"labkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        import signal

        name = getattr(exc, "signame", "SIGINT")
        where = f" (state recorded in {args.out})" if getattr(args, "out", None) else ""
        print(f"labkit: interrupted by {name}{where}", file=sys.stderr)
        return 128 + int(getattr(signal, name, signal.SIGINT))


if __name__ == "__main__":
    sys.exit(main())
