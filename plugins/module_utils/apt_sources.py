"""Read the Debian archive a machine already uses from its apt sources (one-line and deb822 formats).

Rampart never names a package archive: the control node builds its lab images from the archive its
own apt sources use, and the mosquitto role points a managed host's backports source at the archive
that host already uses. Both ask :func:`debian_archive` here.
"""

from __future__ import annotations

import re

SOURCES_LIST = "/etc/apt/sources.list"
SOURCES_DIR = "/etc/apt/sources.list.d"
# What apt itself reads from SOURCES_DIR; other names (foo.list.disabled, foo.save) are ignored by apt.
SOURCES_DIR_PATTERNS = ("*.list", "*.sources")
# URI schemes debootstrap and apt both fetch from (not cdrom:, not mirror+file: lists).
_SCHEMES = ("http://", "https://", "file:")
_OPTIONS_RE = re.compile(r"^\[[^\]]*\]\s*")


def parse_one_line(text: str) -> list[dict]:
    """Entries of a sources.list-style file: ``deb [options] uri suite [component...]``."""
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        rest = _OPTIONS_RE.sub("", rest.strip())
        fields = rest.split()
        if len(fields) < 2:
            continue
        entries.append({"types": [kind], "uris": [fields[0]], "suites": [fields[1]], "components": fields[2:]})
    return entries


def parse_deb822(text: str) -> list[dict]:
    """Entries of a deb822 ``.sources`` file (stanzas separated by blank lines; ``Enabled: no`` skipped)."""
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key is not None:  # continuation line
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if not fields or fields.get("enabled", "yes").lower() == "no":
            continue
        entries.append({"types": fields.get("types", "").split(), "uris": fields.get("uris", "").split(),
                        "suites": fields.get("suites", "").split(),
                        "components": fields.get("components", "").split()})
    return entries


_LISTING_RE = re.compile(r"^(/etc/apt/sources[.]list(?:[.]d/[^/:]+[.](?:list|sources))?):(.*)$")


def from_listing(listing: str) -> dict[str, str]:
    """Each file apt reads, with its text, from ``grep -rH '' /etc/apt/sources.list /etc/apt/sources.list.d``
    (one ``path:line`` per line: every file in one command), in the order apt reads them: sources.list first,
    then sources.list.d's ``*.list`` and ``*.sources`` by name. Other names (foo.list.save...) are left out."""
    lines: dict[str, list[str]] = {}
    for line in listing.splitlines():
        match = _LISTING_RE.match(line)
        if match:
            lines.setdefault(match.group(1), []).append(match.group(2))
    order = sorted(lines, key=lambda path: (path != SOURCES_LIST, path))
    return {path: "\n".join(lines[path]) + "\n" for path in order}


def parse(path: str, text: str) -> list[dict]:
    """Entries of one apt sources file, by its name (``*.sources``: deb822; anything else: one-line)."""
    return parse_deb822(text) if path.endswith(".sources") else parse_one_line(text)


def debian_archive(files: dict[str, str], suite: str) -> str | None:
    """The URI of the first binary (``deb``) source that serves ``suite`` (e.g. ``bookworm``), or None.

    ``files`` maps each sources file's path to its text, in the order apt reads them. The suite must
    match exactly, so backports, updates and security sources (``bookworm-backports``...) never count.
    """
    for path, text in files.items():
        for entry in parse(path, text):
            if "deb" not in entry["types"] or suite not in entry["suites"]:
                continue
            for uri in entry["uris"]:
                if uri.startswith(_SCHEMES):
                    return uri.rstrip("/")
    return None


def not_found_message(looked_at: list[str], suite: str, fix: str) -> str:
    """The error when no source serves ``suite``: what was read, and how to go on."""
    return (f"no apt source of this machine serves the Debian suite {suite!r} (read: {', '.join(looked_at) or 'none'}; "
            f"one-line 'deb URI {suite} main' or deb822 'Types: deb / URIs: URI / Suites: {suite}'); {fix}")
