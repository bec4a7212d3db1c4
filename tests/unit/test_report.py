"""The end-of-run report names every failed or erroring test and nothing else."""

from tests.support import report

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.behaviour.test_acl" name="test_ok" time="0.1"/>
<testcase classname="tests.behaviour.test_acl" name="test_bad" time="0.1">
<failure message="AssertionError: dashboard read $SYS&#10;second line">trace</failure></testcase>
<testcase classname="tests.logging.test_ship" name="test_setup" time="0.1"><error message="fixture broke"/></testcase>
</testsuite></testsuites>
"""


def test_failures_lists_failed_and_erroring_cases_with_their_first_message_line(tmp_path):
    path = tmp_path / "r.xml"
    path.write_text(JUNIT)
    assert report.failures(path) == [
        "FAILURE tests.behaviour.test_acl::test_bad: AssertionError: dashboard read $SYS",
        "ERROR tests.logging.test_ship::test_setup: fixture broke",
    ]


def test_main_says_when_no_test_failed(tmp_path, capsys):
    passing = '<testsuites><testsuite><testcase classname="t" name="test_ok"/></testsuite></testsuites>'
    (tmp_path / "r.xml").write_text(passing)
    assert report.main(["report", str(tmp_path)]) == 0
    assert "no failed test in 1 report(s)" in capsys.readouterr().out
