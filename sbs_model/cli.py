"""The ``sbs`` command line.

Every sub-command is a module in :mod:`sbs_model.commands` defining ``NAME`` (the verb),
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int`` (exit code).  Modules
are discovered automatically, so adding a command never touches this file.

Bad input (``ValueError``, ``FileNotFoundError``) prints one ``sbs <verb>: error: ...`` line and
exits with code 2; a keyboard interrupt exits with 130.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from sbs_model import commands as _commands_pkg


def _load_commands():
    mods = []
    for info in sorted(pkgutil.iter_modules(_commands_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"sbs_model.commands.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    return mods


def build_parser():
    parser = argparse.ArgumentParser(
        prog="sbs", description="Spike-by-Spike co-design: models, number formats, RTL and regression.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _load_commands():
        p = sub.add_parser(mod.NAME, help=getattr(mod, "HELP", ""), description=getattr(mod, "HELP", ""))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"sbs {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sbs {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
