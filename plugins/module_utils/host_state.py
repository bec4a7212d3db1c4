"""What a managed host has at the start of a run, from one command (playbooks/prepare.yml): the packages
installed and the systemd services both active and enabled. The roles skip an install step or a "make sure it
is enabled and running" step on a host where this says there is nothing to do (each such module run costs about
half a second on the host, and a run that changes nothing did a dozen of them per host).

The command prints three sections, each after a marker line (``SECTIONS``):
  dpkg-query --show --showformat='${db:Status-Abbrev} ${Package}\\n'
  systemctl list-units --type=service --all --plain --no-legend       (UNIT LOAD ACTIVE SUB DESCRIPTION)
  systemctl list-unit-files --type=service --plain --no-legend        (UNIT STATE [PRESET])
"""

from __future__ import annotations

SECTIONS = ("# packages", "# units", "# unit files")


def _sections(listing: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {name: [] for name in SECTIONS}
    current = None
    for line in listing.splitlines():
        if line.strip() in SECTIONS:
            current = line.strip()
        elif current is not None and line.strip():
            out[current].append(line.split())
    return out


def parse(listing: str) -> dict[str, list[str]]:
    """{'packages': installed package names, 'enabled': services enabled, 'running': services active and enabled},
    each sorted.

    A package counts when dpkg says it is installed ("ii"; not "rc", removed with its config left). A service
    counts when it is active (list-units) and its unit file is enabled (list-unit-files). A template's instance
    (wg-quick@wg0.service) is never in the second list, so it never counts: its role reads it itself."""
    sections = _sections(listing)
    packages = sorted({f[-1] for f in sections["# packages"] if len(f) >= 2 and f[0] == "ii"})
    active = {f[0] for f in sections["# units"] if len(f) >= 3 and f[2] == "active"}
    enabled = {f[0] for f in sections["# unit files"] if len(f) >= 2 and f[1] == "enabled"}
    return {"packages": packages, "enabled": sorted(enabled), "running": sorted(active & enabled)}
