"""The Debian archive is read from the machine's own apt sources, never assumed (module_utils.apt_sources).

Used by the control node (rampart.harness.debian_mirror, the lab images) and by the mosquitto role on each
managed host (filter rampart.mqtt.debian_archive, the backports source).
"""

from __future__ import annotations

import pytest
from ansible_collections.rampart.mqtt.plugins.filter import apt as apt_filter
from ansible_collections.rampart.mqtt.plugins.module_utils import apt_sources

from rampart import harness

# The fixtures use this machine's own archive (its apt sources, as bootstrap reads them), with a suffix per role,
# so no archive host name is written here.
MIRROR = harness.debian_mirror()
SECURITY = f"{MIRROR}-security"

ONE_LINE = f"""\
# a comment
deb-src {MIRROR}/src bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {MIRROR}/ bookworm main contrib
deb {SECURITY} bookworm-security main
"""

DEB822 = f"""\
Types: deb
URIs: {MIRROR}-disabled
Suites: bookworm
Components: main
Enabled: no

Types: deb
# a comment inside a stanza
URIs: {SECURITY}
Suites: bookworm-security
Components: main

Types: deb deb-src
URIs: {MIRROR}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

BACKPORTS_ONLY = f"""\
Types: deb
URIs: {MIRROR}-backports
Suites: bookworm-backports
Components: main
"""


def test_one_line_format_skips_sources_and_options():
    assert apt_sources.debian_archive({"/etc/apt/sources.list": ONE_LINE}, "bookworm") == MIRROR


def test_deb822_format_skips_disabled_and_security_stanzas():
    assert apt_sources.debian_archive({"/etc/apt/sources.list.d/debian.sources": DEB822}, "bookworm") == MIRROR


def test_suite_must_match_exactly():
    files = {"/etc/apt/sources.list.d/rampart-bookworm-backports.sources": BACKPORTS_ONLY,
             "/etc/apt/sources.list.d/debian.sources": DEB822}
    assert apt_sources.debian_archive(files, "bookworm") == MIRROR
    assert apt_sources.debian_archive(files, "trixie") is None
    assert apt_sources.debian_archive({"x.sources": BACKPORTS_ONLY}, "bookworm") is None


def test_the_first_file_apt_reads_wins():
    other = f"deb {MIRROR}-other bookworm main\n"
    files = {"/etc/apt/sources.list": other, "/etc/apt/sources.list.d/debian.sources": DEB822}
    assert apt_sources.debian_archive(files, "bookworm") == f"{MIRROR}-other"


def _listing(files: dict[str, str]) -> str:
    """What grep -rH '' prints for these files: path:line for each line."""
    return "".join(f"{path}:{line}\n" for path, text in files.items() for line in text.splitlines())


def test_filters_read_the_hosts_grep_listing_in_apts_order():
    files = {"/etc/apt/sources.list.d/zz.sources": DEB822.replace(MIRROR, f"{MIRROR}-late"),
             "/etc/apt/sources.list.d/debian.sources": DEB822,
             "/etc/apt/sources.list.d/old.list.save": ONE_LINE.replace(MIRROR, f"{MIRROR}-saved"),
             "/etc/apt/preferences.d/pin": "Package: *"}
    read = apt_filter.apt_sources(_listing(files))
    assert list(read) == ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list.d/zz.sources"]
    assert read["/etc/apt/sources.list.d/debian.sources"].rstrip("\n") == DEB822.rstrip("\n")
    assert apt_filter.debian_archive(read, "bookworm") == MIRROR
    assert apt_filter.debian_archive(read, "trixie") == ""
    listed_first = apt_filter.apt_sources(_listing({"/etc/apt/sources.list.d/a.list": ONE_LINE.replace(MIRROR, "x"),
                                                    "/etc/apt/sources.list": ONE_LINE}))
    assert next(iter(listed_first)) == "/etc/apt/sources.list"
    assert apt_filter.debian_archive(listed_first, "bookworm") == MIRROR


@pytest.fixture
def apt_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("RAMPART_DEBIAN_MIRROR", raising=False)
    monkeypatch.setattr(harness, "os_codename", lambda: "bookworm")
    (tmp_path / "sources.list.d").mkdir()
    return tmp_path


def test_control_node_reads_both_formats_like_apt(apt_dir):
    (apt_dir / "sources.list.d" / "debian.sources").write_text(DEB822)
    # Names apt ignores are ignored here too.
    ignored = f"deb {MIRROR}-ignored bookworm main\n"
    (apt_dir / "sources.list.d" / "aaa.list.disabled").write_text(ignored)
    assert harness.debian_mirror(apt_dir) == MIRROR
    (apt_dir / "sources.list").write_text(ONE_LINE.replace(MIRROR, MIRROR + "2"))
    assert harness.debian_mirror(apt_dir) == MIRROR + "2"


def test_control_node_override(apt_dir, monkeypatch):
    monkeypatch.setenv("RAMPART_DEBIAN_MIRROR", MIRROR + "/")
    assert harness.debian_mirror(apt_dir) == MIRROR


def test_control_node_without_a_source_names_what_it_read_and_the_fix(apt_dir):
    (apt_dir / "sources.list.d" / "backports.sources").write_text(BACKPORTS_ONLY)
    with pytest.raises(SystemExit) as exc:
        harness.debian_mirror(apt_dir)
    message = str(exc.value)
    assert str(apt_dir / "sources.list.d" / "backports.sources") in message
    assert "'bookworm'" in message and "RAMPART_DEBIAN_MIRROR" in message


def test_os_codename(tmp_path):
    release = tmp_path / "os-release"
    release.write_text('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nVERSION_CODENAME=trixie\n')
    assert harness.os_codename(release) == "trixie"
    release.write_text('PRETTY_NAME="Something"\n')
    with pytest.raises(SystemExit, match="RAMPART_DEBIAN_MIRROR"):
        harness.os_codename(release)
