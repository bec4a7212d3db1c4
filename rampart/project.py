"""The project directory the tools work in: one rule for every tool.

A project directory holds the lab's inventory (``inventories/lab/``); the lab keeps its state in
``.lab/`` below it, and a checkout of this repository also has the playbooks, ``ansible.cfg`` and the
``.collections`` link scripts/bootstrap makes. The first of these wins:

1. ``--project DIR`` on the tool's command line;
2. the ``RAMPART_PROJECT`` environment variable;
3. the current directory or its nearest parent that is a project directory (as git finds its repository);
4. the checkout an editable install runs from (``pip install -e``, what scripts/bootstrap does).

A tool installed with ``pip install .`` outside any checkout therefore needs 1, 2 or 3.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "RAMPART_PROJECT"
MARKER = Path("inventories") / "lab"


def is_project(path: Path) -> bool:
    return (path / MARKER).is_dir()


def _source_checkout() -> Path | None:
    """The checkout this package runs from when it is installed editable (its source folder's parent)."""
    here = Path(__file__).resolve().parent.parent
    return here if is_project(here) and (here / "galaxy.yml").is_file() else None


def find(explicit: str | os.PathLike | None = None, cwd: Path | None = None) -> Path:
    """The project directory by the rule above; SystemExit naming what was looked at when there is none."""
    if explicit:
        return _checked(Path(explicit), "--project")
    if os.environ.get(ENV):
        return _checked(Path(os.environ[ENV]), ENV)
    start = (cwd or Path.cwd()).resolve()
    for candidate in (start, *start.parents):
        if is_project(candidate):
            return candidate
    checkout = _source_checkout()
    if checkout is not None:
        return checkout
    raise SystemExit(f"rampart: no project directory (a directory with {MARKER}/): looked at --project, ${ENV}, "
                     f"{start} and its parents, and the checkout of an editable install (none). Pass --project DIR, "
                     f"set {ENV}=DIR, or run from a checkout of the repository.")


def _checked(path: Path, source: str) -> Path:
    path = path.expanduser().resolve()
    if not is_project(path):
        raise SystemExit(f"rampart: {source} names {path}, which has no {MARKER}/ (not a Rampart project directory)")
    return path
