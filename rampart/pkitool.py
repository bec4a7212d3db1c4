"""``rampart-pki``: back up or restore a Rampart pki_dir (the CA custody commands of the pki role README).

A backup is encrypted with the passphrase in an environment variable (RAMPART_PKI_BACKUP_PASSPHRASE, or the one
``--passphrase-env`` names, e.g. filled from your vault); an unencrypted one takes ``--unencrypted`` (review M5).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from rampart.collection import module_utils

pki = module_utils("pki")

PASSPHRASE_ENV = "RAMPART_PKI_BACKUP_PASSPHRASE"  # noqa: S105  the name of a variable, not a passphrase


def main(argv: Sequence[str] | None = None) -> int:
    """``rampart-pki backup PKI_DIR ARCHIVE`` / ``restore ARCHIVE PKI_DIR``."""
    parser = argparse.ArgumentParser(prog="rampart-pki", description="Back up or restore a Rampart pki_dir.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("backup", help="write PKI_DIR to an encrypted tar.gz (mode 0600); it holds every key")
    b.add_argument("pki_dir")
    b.add_argument("archive")
    b.add_argument("--unencrypted", action="store_true",
                   help="write a plain tar.gz (only for a throw-away test CA, or onto storage that is encrypted)")
    r = sub.add_parser("restore", help="restore a backup into an absent or empty PKI_DIR")
    r.add_argument("archive")
    r.add_argument("pki_dir")
    for p in (b, r):
        p.add_argument("--passphrase-env", default=PASSPHRASE_ENV, metavar="VAR",
                       help=f"the environment variable holding the backup passphrase (default {PASSPHRASE_ENV})")
    args = parser.parse_args(argv)
    passphrase = os.environ.get(args.passphrase_env, "").encode() or None
    try:
        if args.command == "backup":
            if passphrase is None and not args.unencrypted:
                raise pki.PkiError(f"{args.passphrase_env} is empty: set it to the backup passphrase (at least "
                                   f"{pki.MIN_BACKUP_PASSPHRASE} characters, from your vault), or pass --unencrypted "
                                   "for a throw-away test CA")
            run = pki.backup(args.pki_dir, args.archive, None if args.unencrypted else passphrase)
        else:
            run = pki.restore(args.archive, args.pki_dir, passphrase)
    except pki.PkiError as exc:
        print(f"rampart-pki {args.command}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
