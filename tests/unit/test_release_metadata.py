"""What a user sees of a release agrees: one version, one licence, a changelog entry for the version."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir())


def test_collection_and_tools_share_one_semantic_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", GALAXY["version"])
    assert PYPROJECT["version"] == GALAXY["version"]


def test_changelog_has_an_entry_for_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, re.M)
    assert released and released[0] == GALAXY["version"], "the newest CHANGELOG.md entry is not galaxy.yml's version"


def test_one_licence_everywhere():
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]
    assert GALAXY["license"] == ["Apache-2.0"]
    assert PYPROJECT["license"] == "Apache-2.0"
    assert [p.name for p in ROOT.glob("LICEN[CS]E*")] == ["LICENSE"]
    licences = {role.name: yaml.safe_load((role / "meta" / "main.yml").read_text())["galaxy_info"]["license"]
                for role in ROLES}
    assert len(licences) >= 9
    assert {name: lic for name, lic in licences.items() if lic != "Apache-2.0"} == {}


def test_no_role_or_folder_carries_its_own_licence():
    outside = {".venv", ".venv-sslyze", ".collections", ".git", ".lab", ".ansible"}
    stray = [p.relative_to(ROOT).as_posix() for p in ROOT.glob("*/**/LICEN[CS]E*")
             if not outside & set(p.relative_to(ROOT).parts)]
    assert stray == []
