"""``rampart-pki``: back up or restore a Rampart pki_dir (the CA custody commands of the pki role README)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from rampart.collection import module_utils

pki = module_utils("pki")


def main(argv: Sequence[str] | None = None) -> int:
    """``rampart-pki backup PKI_DIR ARCHIVE`` / ``restore ARCHIVE PKI_DIR``."""
    parser = argparse.ArgumentParser(prog="rampart-pki", description="Back up or restore a Rampart pki_dir.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("backup", help="write PKI_DIR to a tar.gz (mode 0600); it holds every key")
    b.add_argument("pki_dir")
    b.add_argument("archive")
    r = sub.add_parser("restore", help="restore a backup into an absent or empty PKI_DIR")
    r.add_argument("archive")
    r.add_argument("pki_dir")
    args = parser.parse_args(argv)
    try:
        if args.command == "backup":
            run = pki.backup(args.pki_dir, args.archive)
        else:
            run = pki.restore(args.archive, args.pki_dir)
    except pki.PkiError as exc:
        print(f"rampart-pki {args.command}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
