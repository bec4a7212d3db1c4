"""The audit's outputs validate against their schemas: ours (JSON), SARIF 2.1.0, JUnit (Jenkins' XSD)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from rampart.audit import report
from rampart.audit.model import CHECKS, Finding, Location

DATA = Path(__file__).parent / "data" / "audit"
OURS = Path(report.__file__).parent / "schemas" / "report-v1.schema.json"

FINDINGS = [
    Finding("DRIFT-TASK", "broker1", "fail", "mosquitto : Install the password file would change /etc/mosquitto/passwd",
            {"diff": "--- before\n+++ after\n-intruder:<redacted>", "role": "rampart.mqtt.mosquitto"},
            Location("roles/mosquitto/tasks/config.yml", 12)),
    Finding("MQTT-NO-ANONYMOUS", "broker1", "pass", "anonymous CONNECT refused on every TLS listener"),
    Finding("LOG-RECEIVING", "logs1", "fail", "the collector's rsyslog is inactive"),
    Finding("TLS-PROTOCOLS", "broker1", "error", "sslyze could not connect"),
]


@pytest.fixture
def rep() -> report.Report:
    return report.Report(FINDINGS, {"broker1": "enhanced", "logs1": "enhanced"}, "2026-12-02T19:00:00+00:00",
                         "2026-12-02T19:01:00+00:00", "0.2.0", "inventories/lab/hosts.yml")


def test_exit_codes():
    assert report.Report(FINDINGS).exit_code == 1
    assert report.Report([f for f in FINDINGS if f.status != "fail"]).exit_code == 2
    assert report.Report([f for f in FINDINGS if f.status == "pass"]).exit_code == 0


def test_json_validates_against_our_schema(rep):
    doc = json.loads(report.as_json(rep))
    jsonschema.Draft202012Validator(json.loads(OURS.read_text())).validate(doc)
    assert doc["exit_code"] == 1 and set(doc["checks"]) == set(CHECKS)
    assert [f["status"] for f in doc["findings"]] == ["fail", "fail", "error", "pass"]


def test_our_schema_refuses_a_report_without_findings(rep):
    doc = json.loads(report.as_json(rep))
    del doc["findings"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(json.loads(OURS.read_text())).validate(doc)


def test_sarif_validates_against_the_published_schema(rep):
    doc = json.loads(report.sarif(rep))
    jsonschema.Draft202012Validator(json.loads((DATA / "sarif-2.1.0.json").read_text())).validate(doc)
    results = doc["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"DRIFT-TASK", "LOG-RECEIVING", "TLS-PROTOCOLS"}
    drift = next(r for r in results if r["ruleId"] == "DRIFT-TASK")
    assert drift["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "roles/mosquitto/tasks/config.yml"}, "region": {"startLine": 12}}
    log = next(r for r in results if r["ruleId"] == "LOG-RECEIVING")
    assert log["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "inventories/lab/hosts.yml"
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(CHECKS)
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)


def test_sarif_schema_refuses_a_result_without_a_message(rep):
    doc = json.loads(report.sarif(rep))
    del doc["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(json.loads((DATA / "sarif-2.1.0.json").read_text())).validate(doc)


def test_junit_validates_and_has_one_case_per_check_and_host(rep):
    xml = report.junit(rep)
    xmlschema.XMLSchema(DATA / "junit.xsd").validate(xml.encode())
    root = ET.fromstring(xml.encode())
    cases = [(s.get("name"), c.get("name").split()[0]) for s in root for c in s]
    assert sorted(cases) == sorted((f.host, f.check) for f in FINDINGS)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "2", "1")


def test_junit_schema_refuses_a_case_without_a_name(rep):
    root = ET.fromstring(report.junit(rep).encode())
    del root[0][0].attrib["name"]
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        xmlschema.XMLSchema(DATA / "junit.xsd").validate(ET.tostring(root))


def test_text_lists_failures_first_and_shows_the_redacted_diff(rep):
    out = report.text(rep)
    lines = out.splitlines()
    assert lines[1].startswith("FAIL") and "PASS" in lines[4]
    assert "intruder:<redacted>" in out
    assert out.rstrip().endswith("2 failed, 1 could not be checked, 1 passed")
