"""Every role's public interface is consistent: defaults, argument specs, comments, README.

ansible-core treats argument-spec defaults as documentation only, so this is what keeps the
documented defaults and the real ones (defaults/main.yml) the same.
"""

import re
from pathlib import Path

import pytest
import yaml

from tests.support import ROLES_DIR

# The roles that do something; the wiring role (variables only, below) sets their variables.
WIRING = ROLES_DIR / "wiring"
ROLES = sorted(p for p in (ROLES_DIR).iterdir() if p.is_dir() and (p / "tasks").is_dir() and p != WIRING)


@pytest.fixture(params=ROLES, ids=[r.name for r in ROLES])
def role(request) -> Path:
    return request.param


def load(path: Path):
    return yaml.safe_load(path.read_text()) or {}


def test_defaults_agree_with_every_entry_point(role):
    defaults = load(role / "defaults" / "main.yml")
    specs = load(role / "meta" / "argument_specs.yml")["argument_specs"]
    assert "main" in specs
    for entry, spec in specs.items():
        options = spec.get("options", {})
        required = {name for name, opt in options.items() if opt.get("required")}
        assert set(defaults) == set(options) - required, f"{role.name}:{entry}"
        for name, value in defaults.items():
            assert options[name].get("default") == value, f"{role.name}:{entry}:{name}"
        assert not required & set(defaults), f"{role.name}: a required variable has a default"


def test_public_variables_carry_the_role_prefix(role):
    options = load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert all(name.startswith(f"{role.name}_") for name in options)


def test_every_default_has_a_comment_line(role):
    lines = (role / "defaults" / "main.yml").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"^{role.name}_\w+:", line):
            assert lines[i - 1].startswith("# "), f"{role.name}: no comment above {line}"


def test_internal_variables_are_double_underscored(role):
    vars_file = role / "vars" / "main.yml"
    if vars_file.exists():
        assert all(name.startswith(f"__{role.name}_") for name in load(vars_file))


def test_the_wiring_role_sets_only_internal_variables_and_variables_other_roles_declare():
    """The wiring role holds every contract between the roles and nothing else: no defaults, one task file the roles
    share (the package index, imported by each role's install step), and each of its variables is either internal
    (__rampart_) or an option of another role's argument spec."""
    assert sorted(p.name for p in WIRING.iterdir()) == ["README.md", "meta", "tasks", "vars"]
    assert sorted(p.name for p in (WIRING / "tasks").iterdir()) == ["apt_index.yml"]
    declared = {name for role in ROLES for spec in load(role / "meta" / "argument_specs.yml")["argument_specs"].values()
                for name in spec.get("options", {})}
    wired = set(load(WIRING / "vars" / "main.yml"))
    assert wired - declared == {name for name in wired if name.startswith("__rampart_")}


def test_role_has_a_readme(role):
    text = (role / "README.md").read_text()
    assert len(text.splitlines()) > 10
