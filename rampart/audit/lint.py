"""scripts/audit lint FILE...: offline checks of a mosquitto.conf, an ACL file or a password file.

  LINT-UNKNOWN-OPTION  an option Mosquitto 2.0 does not have (the broker would refuse to start), e.g. the
                       blog inventions max_connections_per_IP and max_payload_size
  LINT-ANONYMOUS       allow_anonymous true
  LINT-PLAINTEXT       a listener without certfile and keyfile (plaintext MQTT or WebSockets)
  LINT-BRIDGE-INSECURE a bridge (connection) without TLS (no bridge_cafile or bridge_capath), or with
                       bridge_insecure true (the remote broker's name is not verified)
  LINT-ACL-WILDCARD    read access to # or $SYS/# for anyone but the admins named with --admin
  LINT-WEAK-HASH       a password line that is not a PBKDF2-SHA512 ($7$) hash (never printed)

Exit 0 clean, 1 findings, 2 a file could not be read. The option list is data/mosquitto_options.txt.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import sys
from dataclasses import dataclass
from pathlib import Path

OPTIONS_FILE = Path(__file__).parent / "data" / "mosquitto_options.txt"
ACL_WORDS = ("user", "topic", "pattern")


@dataclass(frozen=True)
class Lint:
    file: str
    line: int
    id: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.id} {self.message}"


def options() -> list[str]:
    return [w.strip() for w in OPTIONS_FILE.read_text().splitlines() if w.strip() and not w.startswith("#")]


def kind_of(lines: list[str]) -> str:
    words = [ln.split()[0] for ln in lines if ln.strip() and not ln.startswith("#")]
    if words and all(w in ACL_WORDS for w in words):
        return "acl"
    entries = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    if entries and all(re.match(r"^[^:\s]+:\S*$", ln) for ln in entries):
        return "passwd"
    return "conf"


def lint_conf(name: str, lines: list[str]) -> list[Lint]:
    known, out = options(), []
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        option = words[0]
        if not any(option == k or (k.endswith("*") and fnmatch.fnmatch(option, k)) for k in known):
            out.append(Lint(name, number, "LINT-UNKNOWN-OPTION", f"{option}: Mosquitto 2.0 has no such option "
                            "(the broker stops with 'Unknown configuration variable')"))
        if option == "allow_anonymous" and words[1:2] == ["true"]:
            out.append(Lint(name, number, "LINT-ANONYMOUS",
                            "allow_anonymous true: clients connect without credentials"))
    for section in _sections(lines):
        out += (_plaintext if section["kind"] == "listener" else _insecure_bridge)(name, section)
    return sorted(out, key=lambda f: f.line)


def _sections(lines: list[str]) -> list[dict]:
    """The `listener` and `connection` (bridge) sections: each runs from its line to the next one of either kind,
    with the first value of each option in it (``{option: [values...]}``)."""
    sections: list[dict] = []
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] in ("listener", "connection"):
            sections.append({"kind": words[0], "line": number, "args": words[1:], "options": {}})
        elif sections:
            sections[-1]["options"].setdefault(words[0], words[1:])
    return sections


def _insecure_bridge(name: str, bridge: dict) -> list[Lint]:
    """A bridge without TLS, or with the remote broker's name unverified."""
    options, who = bridge["options"], " ".join(bridge["args"])
    if "bridge_cafile" not in options and "bridge_capath" not in options:
        why = "has no bridge_cafile or bridge_capath: it speaks plaintext MQTT to the remote broker"
    elif options.get("bridge_insecure", [])[:1] == ["true"]:
        why = "sets bridge_insecure true: any certificate of the CA passes for the remote broker"
    else:
        return []
    return [Lint(name, bridge["line"], "LINT-BRIDGE-INSECURE", f"bridge {who} {why}")]


def _plaintext(name: str, listener: dict) -> list[Lint]:
    options = listener["options"]
    if "certfile" in options or "psk_hint" in options:
        return []
    what = "WebSockets" if options.get("protocol", [])[:1] == ["websockets"] else "MQTT"
    return [Lint(name, listener["line"], "LINT-PLAINTEXT", f"listener {' '.join(listener['args'][:1])} speaks "
                 f"plaintext {what} (no certfile): credentials and messages cross the network readable")]


def lint_acl(name: str, lines: list[str], admins: set[str]) -> list[Lint]:
    out, user = [], None
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words or line.startswith("#"):
            continue
        if words[0] == "user":
            user = " ".join(words[1:])
            continue
        access, topic = (words[1], " ".join(words[2:])) if len(words) > 2 else ("readwrite", " ".join(words[1:]))
        broad = topic in ("#", "$SYS/#", "$SYS/+/#") and access in ("read", "readwrite")
        who = "every client (pattern)" if words[0] == "pattern" else (f"user {user}" if user else "anonymous clients")
        if broad and (words[0] == "pattern" or user not in admins):
            out.append(Lint(name, number, "LINT-ACL-WILDCARD", f"{who} may read {topic} (only admins should; name "
                            "them with --admin)"))
    return out


def lint_passwd(name: str, lines: list[str]) -> list[Lint]:
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        user, _, secret = line.strip().partition(":")
        if not secret.startswith("$7$"):
            kind = "a SHA512-crypt ($6$) hash" if secret.startswith("$6$") else "not a hash (plaintext?)"
            out.append(Lint(name, number, "LINT-WEAK-HASH",
                            f"{user}: {kind}; use mosquitto_passwd (PBKDF2-SHA512, $7$)"))
    return out


def lint_file(path: Path, kind: str | None, admins: set[str]) -> list[Lint]:
    lines = path.read_text().splitlines()
    kind = kind or kind_of(lines)
    if kind == "acl":
        return lint_acl(str(path), lines, admins)
    if kind == "passwd":
        return lint_passwd(str(path), lines)
    return lint_conf(str(path), lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="scripts/audit lint", description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--kind", choices=("conf", "acl", "passwd"), help="the kind of every file (default: guessed)")
    p.add_argument("--admin", action="append", default=[], help="a user that may read # and $SYS/# (repeatable)")
    args = p.parse_args(argv)
    found = []
    for path in args.files:
        try:
            found += lint_file(path, args.kind, set(args.admin))
        except (OSError, UnicodeDecodeError) as exc:
            print(f"audit lint: cannot read {path}: {exc}", file=sys.stderr)
            return 2
    for lint in found:
        print(lint)
    print(f"{len(found)} finding(s) in {len(args.files)} file(s)", file=sys.stderr)
    return 1 if found else 0
