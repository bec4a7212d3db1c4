"""No function in the collection's Python (plugins/) or the tools (rampart/) is longer than a screen.

A screen is 50 lines, counted from the first decorator to the last line of the body, docstring
included. Functions nested in a function count on their own and as part of their parent. There
are no exceptions: a function that grows past a screen is split into named steps.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREEN = 50
SOURCES = sorted([*(ROOT / "plugins").rglob("*.py"), *(ROOT / "rampart").rglob("*.py")])


def long_functions(source: str, limit: int = SCREEN) -> list[tuple[str, int, int]]:
    """(qualified name, first line, length) of every function or method longer than ``limit`` lines."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}."
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                length = child.end_lineno - first + 1
                if length > limit:
                    found.append((name[:-1], first, length))
            visit(child, name)

    visit(ast.parse(source), "")
    return found


def test_the_count_includes_decorators_docstrings_methods_and_nested_functions():
    source = """\
@property
def five():
    \"\"\"Doc.\"\"\"
    x = 1
    return x
def six():
    \"\"\"Doc.\"\"\"
    x = 1
    y = 2
    z = 3
    return x + y + z
class C:
    @staticmethod
    def method():
        x = 1
        y = 2
        return x + y
def outer():
    def inner():
        return 1
    return inner
"""
    # five: lines 1-5 (decorator included), six: 6-11, C.method: 13-17, outer: 18-21, outer.inner: 19-20.
    assert long_functions(source, limit=5) == [("six", 6, 6)]
    assert long_functions(source, limit=4) == [("five", 1, 5), ("six", 6, 6), ("C.method", 13, 5)]
    assert long_functions(source, limit=1) == [
        ("five", 1, 5), ("six", 6, 6), ("C.method", 13, 5), ("outer", 18, 4), ("outer.inner", 19, 2)
    ]


def test_there_is_code_to_measure():
    names = {p.relative_to(ROOT).as_posix() for p in SOURCES}
    assert {"plugins/action/pki.py", "plugins/module_utils/pki/hierarchy.py", "rampart/lab.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=[p.relative_to(ROOT).as_posix() for p in SOURCES])
def test_no_function_is_longer_than_a_screen(path: Path):
    too_long = [f"{name} (line {line}): {length} lines" for name, line, length in long_functions(path.read_text())]
    assert too_long == [], f"{path.relative_to(ROOT)}: split these into named steps of at most {SCREEN} lines"
