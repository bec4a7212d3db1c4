"""Print the failed tests of a run from its JUnit reports, so the last screen of a failed CI log names them.

Usage: python -m tests.support.report DIR   (every *.xml under DIR; exit 0 always: this only reports)
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def failures(report: Path) -> list[str]:
    """One line per failed or erroring test case: `file::name: first line of the message`."""
    lines = []
    for case in ET.parse(report).getroot().iter("testcase"):
        for outcome in ("failure", "error"):
            element = case.find(outcome)
            if element is None:
                continue
            where = f"{case.get('classname', '')}::{case.get('name', '')}"
            message = (element.get("message") or element.text or "").strip().splitlines()
            lines.append(f"{outcome.upper()} {where}: {message[0][:300] if message else '(no message)'}")
    return lines


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else Path(".reports")
    reports = sorted(folder.glob("*.xml"))
    found = False
    for report in reports:
        try:
            lines = failures(report)
        except ET.ParseError as error:
            lines = [f"(unreadable report: {error})"]
        if lines:
            found = True
            print(f"--- {report.name}")
            print("\n".join(lines))
    if not found:
        print(f"(no failed test in {len(reports)} report(s) under {folder}: the failure is outside pytest; see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
