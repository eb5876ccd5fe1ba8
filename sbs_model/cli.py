"""The ``sbs`` command line.

Each package contributes its own verbs through the entry-point group ``sbs.commands`` (declared in
``pyproject.toml`` under ``[project.entry-points."sbs.commands"]`` as ``verb = "package.commands.verb"``):
model verbs live in :mod:`sbs_model.commands`, RTL verbs in :mod:`rtl.commands`, simulation verbs
(and the demo, which orchestrates everything) in :mod:`sim.commands`.  The dispatcher therefore never
imports a package to its right: it only loads what is registered.

A verb is a module defining ``NAME`` (the verb), ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int`` (exit code).  ``sbs VERB ...`` loads only that verb's module; ``sbs``,
``sbs --help`` or an unknown verb load all of them to list them.  A verb whose module cannot be
imported because an optional dependency is missing (e.g. amaranth for the RTL verbs) is still
listed; running it prints one error line saying what is missing (exit code 2).

Bad input (``ValueError``, ``FileNotFoundError``) prints one ``sbs <verb>: error: ...`` line and
exits with code 2; a keyboard interrupt exits with 130; a tool or simulator failure after the checks
(``RuntimeError``, ``OSError``) prints one ``sbs <verb>: failed: ...`` line and exits with 1.
"""
from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

GROUP = "sbs.commands"
DESCRIPTION = "Spike-by-Spike co-design: models, number formats, RTL and regression."


def verb_entry_points() -> dict:
    """``{verb: EntryPoint}`` of the ``sbs.commands`` group, sorted by verb."""
    return {ep.name: ep for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name)}


def escape_percent(text: str) -> str:
    """argparse %-formats help and description strings: a literal ``%`` must be ``%%``."""
    return text.replace("%", "%%")


class UnavailableVerb:
    """Stands in for a verb whose module could not be imported (a missing optional dependency)."""

    def __init__(self, name: str, exc: ImportError):
        self.NAME = name
        self.reason = f"{type(exc).__name__}: {exc}"
        self.HELP = f"(unavailable here: {self.reason})"

    def add_arguments(self, p) -> None:
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def run(self, args) -> int:
        raise ValueError(f"this verb cannot run here ({self.reason}); install the project's dev extra")


def load_verb(ep):
    """The verb module of entry point ``ep`` (or an :class:`UnavailableVerb` when its import fails)."""
    try:
        mod = ep.load()
    except ImportError as exc:
        return UnavailableVerb(ep.name, exc)
    if getattr(mod, "NAME", None) != ep.name or not callable(getattr(mod, "run", None)):
        raise RuntimeError(f"entry point {GROUP}:{ep.name} = {ep.value} does not define NAME = {ep.name!r} and run()")
    return mod


def requested_verb(argv, known) -> str | None:
    """The verb named by the first argument when it is a registered one (then only it is loaded)."""
    return argv[0] if argv and argv[0] in known else None


def build_parser(only: str | None = None):
    """The ``sbs`` parser with every registered verb (or only ``only``)."""
    parser = argparse.ArgumentParser(prog="sbs", description=escape_percent(DESCRIPTION))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, ep in verb_entry_points().items():
        if only is not None and name != only:
            continue
        mod = load_verb(ep)
        text = escape_percent(getattr(mod, "HELP", ""))
        p = sub.add_parser(name, help=text, description=text)
        mod.add_arguments(p)
        p.set_defaults(verb_run=mod.run)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser(requested_verb(argv, verb_entry_points()))
    args = parser.parse_args(argv)
    if not getattr(args, "verb_run", None):
        parser.print_help()
        return 2
    try:
        return int(args.verb_run(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"sbs {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sbs {args.command}: interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, OSError) as exc:  # a tool or simulator run failed after the checks passed
        print(f"sbs {args.command}: failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
