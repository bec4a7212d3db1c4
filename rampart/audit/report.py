"""The audit's outputs: a table for people, JSON (schema rampart/audit/schemas/report-v1.schema.json),
JUnit XML (one test case per check and host) and SARIF 2.1.0 (results located in the file an operator changes).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from .model import CHECKS, Finding

SCHEMA_VERSION = 1
TOOL = "rampart-audit"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
ORDER = {"fail": 0, "error": 1, "pass": 2}


@dataclass
class Report:
    findings: list[Finding]
    profiles: dict[str, str] = field(default_factory=dict)
    started: str = ""
    finished: str = ""
    version: str = ""
    default_location: str | None = None  # the inventory, for findings without a location of their own

    @property
    def exit_code(self) -> int:
        statuses = {f.status for f in self.findings}
        return 1 if "fail" in statuses else 2 if "error" in statuses else 0

    def sorted(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (ORDER[f.status], f.check, f.host))


def text(report: Report) -> str:
    rows = [(f.status.upper(), f.check, f.host, f.message) for f in report.sorted()]
    widths = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in enumerate(("STATUS", "CHECK", "HOST"))]
    lines = [f"{'STATUS':<{widths[0]}}  {'CHECK':<{widths[1]}}  {'HOST':<{widths[2]}}  MESSAGE"]
    lines += [f"{s:<{widths[0]}}  {c:<{widths[1]}}  {h:<{widths[2]}}  {m}" for s, c, h, m in rows]
    for f in report.sorted():
        if f.status == "fail" and f.detail.get("diff"):
            lines += ["", f"--- {f.check} {f.host}: {f.message}", f.detail["diff"]]
    counts = {s: sum(f.status == s for f in report.findings) for s in ("pass", "fail", "error")}
    lines.append(f"\n{counts['fail']} failed, {counts['error']} could not be checked, {counts['pass']} passed")
    return "\n".join(lines) + "\n"


def as_json(report: Report) -> str:
    doc = {
        "schema_version": SCHEMA_VERSION, "tool": {"name": TOOL, "version": report.version},
        "started": report.started, "finished": report.finished, "exit_code": report.exit_code,
        "profiles": report.profiles, "findings": [f.to_dict() for f in report.sorted()],
        "checks": {c.id: {"title": c.title, "kind": c.kind, "severity": c.severity, "profiles": list(c.profiles),
                          "source": c.source, "remedy": c.remedy} for c in CHECKS.values()},
    }
    return json.dumps(doc, indent=2) + "\n"


def junit(report: Report) -> str:
    suites = ET.Element("testsuites", name=TOOL)
    for host in sorted({f.host for f in report.findings}):
        mine = [f for f in report.sorted() if f.host == host]
        suite = ET.SubElement(suites, "testsuite", name=host, tests=str(len(mine)),
                              failures=str(sum(f.status == "fail" for f in mine)),
                              errors=str(sum(f.status == "error" for f in mine)), skipped="0")
        for f in mine:
            case = ET.SubElement(suite, "testcase", classname=host, name=f"{f.check} {CHECKS[f.check].title}")
            if f.status != "pass":
                tag = "failure" if f.status == "fail" else "error"
                ET.SubElement(case, tag, message=f.message, type=f.check).text = f.detail.get("diff") or f.message
    for attr in ("tests", "failures", "errors"):
        suites.set(attr, str(sum(int(s.get(attr)) for s in suites)))
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def sarif(report: Report) -> str:
    rules = [{"id": c.id, "name": c.id.title().replace("-", ""), "shortDescription": {"text": c.title},
              "fullDescription": {"text": f"{c.title}. Source: {c.source}."}, "help": {"text": c.remedy},
              "defaultConfiguration": {"level": LEVEL[c.severity]},
              "properties": {"severity": c.severity, "profiles": list(c.profiles), "kind": c.kind}}
             for c in CHECKS.values()]
    index = {c: i for i, c in enumerate(CHECKS)}
    results = [_sarif_result(f, index[f.check], report.default_location) for f in report.sorted() if f.status != "pass"]
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0",
           "runs": [{"tool": {"driver": {"name": TOOL, "version": report.version or "0", "rules": rules}},
                     "results": results}]}
    return json.dumps(doc, indent=2) + "\n"


def _sarif_result(f: Finding, rule_index: int, default_location: str | None) -> dict:
    result = {"ruleId": f.check, "ruleIndex": rule_index,
              "level": LEVEL[CHECKS[f.check].severity] if f.status == "fail" else "warning",
              "message": {"text": f"{f.host}: {f.message}"},
              "properties": {"host": f.host, "status": f.status}}
    uri = f.location.file if f.location else default_location
    if uri:
        physical = {"artifactLocation": {"uri": uri}}
        if f.location and f.location.line:
            physical["region"] = {"startLine": f.location.line}
        result["locations"] = [{"physicalLocation": physical}]
    return result


FORMATS = {"text": text, "json": as_json, "junit": junit, "sarif": sarif}
