"""The collection (plugins/) never imports the tools package (rampart/) nor test code; the tools may import it.

Checked on the syntax tree of every Python file under plugins/, so a string or comment naming the tools
does not count and an import inside a function does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "plugins").rglob("*.py"))
FORBIDDEN = ("rampart", "tests", "molecule", "pytest", "testinfra")
COLLECTION_PREFIX = "ansible_collections.rampart.mqtt."


def imported_modules(source: str) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def forbidden(names: list[str]) -> list[str]:
    return [n for n in names if n.split(".")[0] in FORBIDDEN]


def test_the_check_sees_every_import_form():
    source = ("import json\nimport rampart.lab\nfrom rampart import mqttprobe\n"
              "def f():\n    from tests.support import lab\n"
              "from ansible_collections.rampart.mqtt.plugins.module_utils import pki\n"
              "'import rampart'  # a string, not an import\n")
    assert forbidden(imported_modules(source)) == ["rampart.lab", "rampart", "tests.support"]


def test_there_is_shipped_code_to_check():
    assert len(SHIPPED) >= 10
    assert any(COLLECTION_PREFIX in p.read_text() for p in SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.relative_to(ROOT).as_posix() for p in SHIPPED])
def test_shipped_code_imports_no_tools(path):
    names = imported_modules(path.read_text())
    assert forbidden(names) == [], f"{path.relative_to(ROOT)} imports the tools or test code"
    # The collection reaches its own Python one way: through its FQCN package.
    relative = [n for n in names if n.startswith("ansible_collections.rampart") and not n.startswith(COLLECTION_PREFIX)]
    assert relative == []
