"""What scripts/lab and scripts/vmlab share on their command line: arguments they do not know pass through intact."""

from __future__ import annotations

import argparse


def parse_passing_through(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; the arguments ``parser`` does not know go, intact and in order, to the attribute the chosen
    sub-command names with ``set_defaults(extra="attribute")``; a ``--`` among them is optional and dropped (the
    first one, as argparse itself would). A sub-command that names none refuses them (exit 2). Unlike
    ``nargs=REMAINDER``, which stops at the first option it does not know and keeps a literal ``--``, this passes
    ``--tags x -v`` as the user typed it."""
    args, extra = parser.parse_known_args(argv)
    if "--" in extra:
        extra.remove("--")
    if not hasattr(args, "extra"):
        if extra:
            parser.error(f"{args.cmd} takes no arguments: {' '.join(extra)}")
        return args
    setattr(args, args.extra, extra)
    return args
