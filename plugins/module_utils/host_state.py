"""What a managed host has at the start of a run, from one command (playbooks/prepare.yml): the packages
installed, the systemd services enabled and those both active and enabled, and the package index's age. The
index is refreshed only where it is older than an hour, and the roles skip an install step or a "make sure it is
enabled and running" step on a host where this says there is nothing to do (each such module run costs about half
a second on the host, and a run that changes nothing did a dozen of them per host).

The command prints four sections, each after a marker line (``SECTIONS``):
  dpkg-query --show --showformat='${db:Status-Abbrev} ${Package}\\n'
  systemctl list-units --type=service --all --plain --no-legend       (UNIT LOAD ACTIVE SUB DESCRIPTION)
  systemctl list-unit-files --type=service --plain --no-legend        (UNIT STATE [PRESET])
  the package index's age in seconds (now minus the mtime of apt's update-success stamp, else of its lists)
"""

from __future__ import annotations

STALE = 86400  # an age that asks for a refresh: the index's age could not be read, or lies in the future
SECTIONS = ("# packages", "# units", "# unit files", "# apt index age")


def _sections(listing: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {name: [] for name in SECTIONS}
    current = None
    for line in listing.splitlines():
        if line.strip() in SECTIONS:
            current = line.strip()
        elif current is not None and line.strip():
            out[current].append(line.split())
    return out


def parse(listing: str) -> dict:
    """{'packages': installed package names, 'enabled': services enabled, 'running': services active and enabled},
    each sorted, and 'apt_index_age': the index's age in seconds (a day and more when it was not read: refresh).

    A package counts when dpkg says it is installed ("ii"; not "rc", removed with its config left). A service
    counts when it is active (list-units) and its unit file is enabled (list-unit-files). A template's instance
    (wg-quick@wg0.service) is never in the second list, so it never counts: its role reads it itself."""
    sections = _sections(listing)
    packages = sorted({f[-1] for f in sections["# packages"] if len(f) >= 2 and f[0] == "ii"})
    active = {f[0] for f in sections["# units"] if len(f) >= 3 and f[2] == "active"}
    enabled = {f[0] for f in sections["# unit files"] if len(f) >= 2 and f[1] == "enabled"}
    ages = [f[0] for f in sections["# apt index age"] if len(f) == 1 and f[0].lstrip("-").isdigit()]
    age = int(ages[0]) if ages else STALE
    return {"packages": packages, "enabled": sorted(enabled), "running": sorted(active & enabled),
            "apt_index_age": age if age >= 0 else STALE}
