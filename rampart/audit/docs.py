"""The check table of docs/audit.md, made from CHECKS: ``python -m rampart.audit.docs`` rewrites it in place."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .model import CHECKS

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"
BEGIN, END = "<!-- checks: made by python -m rampart.audit.docs -->", "<!-- /checks -->"


def table() -> str:
    rows = ["| ID | What passing proves | Kind | Severity | Profiles | Source | Remedy |",
            "|---|---|---|---|---|---|---|"]
    rows += [f"| `{c.id}` | {c.title} | {c.kind} | {c.severity} | {', '.join(c.profiles)} | {c.source} | {c.remedy} |"
             for c in CHECKS.values()]
    return "\n".join(rows).replace("$SYS", "`$SYS`").replace("(#)", "(`#`)")


def rendered(text: str) -> str:
    return re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), f"{BEGIN}\n{table()}\n{END}", text, flags=re.DOTALL)


if __name__ == "__main__":
    DOC.write_text(rendered(DOC.read_text()))
    sys.exit(0)
