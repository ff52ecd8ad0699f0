"""Regenerate the whole-catalogue invariants table.

::

    labkit table                      # every flow and map -> the shipped file
    labkit table --systems Lorenz Henon --out /tmp/t.json
    labkit table --resume             # continue an interrupted run
    labkit table --converge           # the converged table

The table is rewritten atomically after every system, so an interrupted run keeps every
finished row and ``--resume`` skips them (with ``--converge`` too). To recompute some rows
of a table (after a change to their systems), delete them from the file and run
``--systems NAME ... --resume``. One line of progress per system, then the
total wall time. The computation is :func:`labkit.dynamics.build_invariants_table`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from labkit.dynamics.catalogue._table import TableSettings
    from labkit.dynamics.catalogue._table_file import SHIPPED_TABLE

    parser = argparse.ArgumentParser(prog="labkit table",
                                     description=(__doc__ or "\n").split("\n")[1])
    parser.add_argument("--systems", nargs="+", metavar="NAME",
                        help="systems to compute (default: every flow and map)")
    parser.add_argument("--out", default=None,
                        help=f"JSON file to write (default: the table shipped with labkit, "
                             f"{SHIPPED_TABLE.name})")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in --out and compute the others")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes computing systems side by side (default 1)")
    parser.add_argument("--converge", action="store_true",
                        help="the converged table instead: averages doubled until every "
                             "exponent is stable (labkit.dynamics.build_converged_table); "
                             "--out defaults to the shipped invariants_converged.json")
    for field in dataclasses.fields(TableSettings):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default),
                            default=None, help=f"TableSettings.{field.name} "
                                               f"(default {field.default!r})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator; returns the exit status (0, or 2 for bad arguments)."""
    args = _parser().parse_args(argv)
    import torch

    from labkit.dynamics.catalogue._table import TableSettings
    from labkit.dynamics.catalogue._table_file import SHIPPED_TABLE, build_invariants_table
    from labkit.errors import ConfigError

    if args.threads < 1:
        print(f"error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)  # the CLI is the edge: the library never does this
    if args.converge:
        from labkit.dynamics.catalogue._converge import CONVERGED_TABLE, build_converged_table

        try:
            build_converged_table(args.systems, path=args.out or CONVERGED_TABLE,
                                  resume=args.resume,
                                  progress=lambda line: print(line, flush=True))
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TableSettings)
             if getattr(args, f.name) is not None}
    try:
        settings = TableSettings(**given) if given or not args.resume else None
        build_invariants_table(args.systems, path=args.out or SHIPPED_TABLE, settings=settings,
                               resume=args.resume, progress=lambda line: print(line, flush=True),
                               workers=args.workers)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0

