"""docs/audit.md's check table is the one CHECKS makes (python -m rampart.audit.docs rewrites it)."""

from __future__ import annotations

from rampart.audit import docs
from rampart.audit.model import CHECKS


def test_the_committed_table_is_the_generated_one():
    text = docs.DOC.read_text()
    assert docs.rendered(text) == text, "run: .venv/bin/python -m rampart.audit.docs"


def test_every_check_is_in_the_table_once():
    table = docs.table()
    assert all(table.count(f"| `{check}` |") == 1 for check in CHECKS)
    assert len(table.splitlines()) == len(CHECKS) + 2
