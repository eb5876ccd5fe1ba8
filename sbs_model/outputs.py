"""Output paths of the ``sbs`` verbs, checked before any work.

A verb that will write a directory or a file checks the path first, so that a wrong path costs
one error line (the CLI turns the ``ValueError`` into exit code 2) instead of a traceback after
minutes of work:

* :func:`output_dir` -- the path is a directory or can become one: it is not an existing file,
  no existing parent is a file, and the nearest existing parent is writable;
* :func:`output_file` -- the same for a file: not an existing directory, no parent a file,
  the nearest existing parent writable;
* :func:`input_dir` -- an existing directory (not a file).

Nothing is created: the verbs write their results atomically (:mod:`sbs_model.atomic`) once
the work is done.
"""
from __future__ import annotations

import os
from pathlib import Path


def _parents_ok(p: Path, arg: str) -> None:
    """Every existing ancestor of ``p`` is a directory, and the nearest one is writable."""
    for parent in p.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise ValueError(f"{arg} {p}: {parent} is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ValueError(f"{arg} {p}: directory {parent} is not writable")
            return


def output_dir(path, arg: str) -> Path:
    """``path`` as a Path if it can be an output directory, else ValueError naming ``arg``."""
    if path is None or str(path) == "":
        raise ValueError(f"{arg}: an output directory is required")
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise ValueError(f"{arg} {p}: is a file, not a directory")
    if p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise ValueError(f"{arg} {p}: directory is not writable")
        return p
    _parents_ok(p, arg)
    return p


def output_file(path, arg: str) -> Path:
    """``path`` as a Path if a file can be written there, else ValueError naming ``arg``."""
    if path is None or str(path) == "":
        raise ValueError(f"{arg}: an output file name is required")
    p = Path(path).expanduser()
    if p.is_dir():
        raise ValueError(f"{arg} {p}: is a directory; give a file name")
    if p.exists() and not os.access(p, os.W_OK):
        raise ValueError(f"{arg} {p}: file is not writable")
    _parents_ok(p, arg)
    return p


def input_dir(path, arg: str) -> Path:
    """``path`` as a Path if it is an existing directory, else ValueError naming ``arg``."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ValueError(f"{arg} {p}: does not exist")
    if not p.is_dir():
        raise ValueError(f"{arg} {p}: is a file; give a directory")
    return p
