"""Every module's DOCUMENTATION, EXAMPLES and RETURN are YAML that ansible-doc can read (a stray `: ` in a
description breaks `ansible-doc` and the collection's documentation without failing anything else)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

MODULES = sorted((Path(__file__).resolve().parents[2] / "plugins" / "modules").glob("*.py"))


def blocks(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text())
    return {n.targets[0].id: n.value.value for n in tree.body
            if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
            and n.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN")}


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_the_module_documents_itself_in_yaml(path: Path):
    found, wanted = blocks(path), {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    assert set(found) == wanted, f"{path.name} lacks {wanted - set(found)}"
    doc = yaml.safe_load(found["DOCUMENTATION"])
    assert doc["module"] == path.stem and doc["short_description"] and doc["options"]
    assert isinstance(yaml.safe_load(found["EXAMPLES"]), list)
    assert isinstance(yaml.safe_load(found["RETURN"]), dict)
