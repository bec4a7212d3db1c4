"""scripts/bench's report (rampart.bench_report) and its plan (rampart.bench), from the results of a real quick run
(tests/unit/data/bench_quick_results.json): what is judged and how, the Markdown, the plots. Benchmarks are never
tests; this checks the arithmetic and the report, not any figure of this machine."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from PIL import Image

from rampart import bench, bench_report

QUICK = json.loads((Path(__file__).parent / "data" / "bench_quick_results.json").read_text())


def full_size(results: dict) -> dict:
    """The quick results made to look like a full run's sizes, with the figures of the README's last full runs."""
    full = copy.deepcopy(results)
    full["meta"]["quick"] = False
    full["clients"].update(largest=10000, rerun_ratio=2.5, first_ratio=2.9)
    full["pki_scale"]["runs"].append({"count": 10000, "first_seconds": 24.6, "rerun_seconds": 10.5})
    full["pki_scale"].update(largest=10000, rerun_ratio=7.0)
    full["lab"] = {"rounds": [{"fresh_seconds": 70.0, "rerun_seconds": 25.0, "audit_seconds": 21.0,
                               "rerun_ratio": 0.357, "audit_ratio": 0.3}],
                   "median": {"fresh_seconds": 70.0, "rerun_seconds": 25.0, "audit_seconds": 21.0,
                              "rerun_ratio": 0.357, "audit_ratio": 0.3},
                   "goals": {"rerun_ratio": 0.4, "audit_ratio": 0.333}}
    full["broker"]["load"]["ratios"] = {"0": 0.94, "1": 0.79}
    full["broker"]["handshakes"]["ratio"] = 1.14
    return full


def by_key(results: dict) -> dict[str, bench_report.Verdict]:
    return {v.key: v for v in bench_report.verdicts(results)}


def test_a_quick_run_shows_every_goal_and_judges_none():
    verdicts = by_key(QUICK)
    assert set(verdicts) == {"clients_rerun", "clients_first", "pki_first", "pki_rerun", "pki_community", "load_0",
                             "load_1", "handshakes", "acl", "storm"}
    assert all(v.met is None for v in verdicts.values())
    assert verdicts["clients_rerun"].what == "clients: idempotent re-run, N=100 / N=10"
    assert verdicts["clients_rerun"].figure == "1.11x"
    text = bench_report.markdown(QUICK)
    assert "no goal is judged at them" in text
    assert "Why a goal is not met" not in text


def test_a_full_run_is_judged_against_each_goal_and_a_missed_one_is_explained():
    verdicts = by_key(full_size(QUICK))
    met = {key: v.met for key, v in verdicts.items()}
    assert met == {"clients_rerun": False, "clients_first": True, "pki_first": True, "pki_rerun": False,
                   "pki_community": None, "lab_rerun": True, "lab_audit": True, "load_0": True, "load_1": False,
                   "handshakes": False, "acl": None, "storm": None}
    assert verdicts["pki_first"].what == "certificates: first run at N=10,000"
    assert verdicts["pki_first"].figure == "24.6 s"
    text = bench_report.markdown(full_size(QUICK))
    assert "| 13 | clients: idempotent re-run, N=10,000 / N=10 | 2.50x | at most 2x | **not met** |" in text
    assert "| 10 | lab: audit / fresh (median of the rounds) | 0.30 | below 0.33 | met |" in text
    why = text.split("### Why a goal is not met, and what would meet it", 1)[1]
    for key in ("clients_rerun", "pki_rerun", "load_1", "handshakes"):
        assert bench_report.WHY[key] in why
    assert bench_report.WHY["clients_first"] not in why


def test_the_goal_lines_at_the_edges():
    results = full_size(QUICK)
    results["clients"].update(rerun_ratio=2.0, first_ratio=3.01)
    results["lab"]["median"].update(rerun_ratio=0.40, audit_ratio=1 / 3)
    results["broker"]["load"]["ratios"] = {"0": 0.8, "1": 0.8}
    met = {key: v.met for key, v in by_key(results).items()}
    assert (met["clients_rerun"], met["clients_first"]) == (True, False)
    assert (met["lab_rerun"], met["lab_audit"]) == (True, False)  # "below 1/3": 1/3 itself is not below
    assert (met["load_0"], met["load_1"]) == (True, True)


def test_the_report_and_its_plots_are_written_and_readable(tmp_path):
    written = bench_report.write(QUICK, tmp_path)
    assert [p.name for p in written] == ["report.md", "scaling.png", "broker.png", "lab.png"]
    for png in written[1:]:
        with Image.open(png) as image:
            assert image.format == "PNG"
            assert image.width >= 600 and image.height >= 300
    report = (tmp_path / "report.md").read_text()
    for name in ("scaling.png", "broker.png", "lab.png"):
        assert f"]({name})" in report
    # Each benchmark's own report text is reused (the broker's tables take the QoS keys JSON made strings).
    assert "| QoS 1: messages/s, 20 in flight per pair | 127,166 | 192,154 | **0.66** (goal >= 0.8) |" in report
    assert "quick: re-run 21.4 s, audit 18.3 s" in report
    assert "| 100 | 0.86 s | 0.84 s |" in report


def test_plots_of_an_earlier_run_are_removed_and_absent_benchmarks_are_not_drawn(tmp_path):
    (tmp_path / "lab.png").write_bytes(b"stale")
    only_pki = {"meta": QUICK["meta"], "pki_scale": QUICK["pki_scale"]}
    written = bench_report.write(only_pki, tmp_path)
    assert [p.name for p in written] == ["report.md", "scaling.png"]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["scaling.png"]
    assert "broker.png" not in (tmp_path / "report.md").read_text()


def test_render_writes_the_report_again_from_a_saved_run(tmp_path, capsys):
    (tmp_path / "results.json").write_text(json.dumps(QUICK))
    assert bench.main(["--render", str(tmp_path)]) == 0
    assert (tmp_path / "report.md").read_text() == bench_report.markdown(QUICK)
    assert "(quick sizes: figures are shown, no goal is judged)" in capsys.readouterr().out


@pytest.mark.parametrize(("names", "quick", "expected"), [
    (["broker", "pki"], True, [("pki_scale", ["--scale", "10,100", "--json"]),
                               ("pki_community", ["--count", "5", "--json"]),
                               ("broker", ["--quick", "--json"])]),
    (list(bench.ORDER), False, [("pki_scale", ["--scale", "10,100,1000,10000", "--json"]),
                                ("pki_community", ["--count", "300", "--json"]),
                                ("lab", ["--rounds", "3", "--json"]),
                                ("lab_brokers", ["--brokers", "1,5,10", "--json"]),
                                ("clients", ["--counts", "10,100,1000,10000", "--no-restore", "--json"]),
                                ("broker", ["--json"])]),
    (["clients"], True, [("clients", ["--quick", "--json"])]),
    # The brokers benchmark is for full runs only (two more fresh labs would cost scripts/test 4 minutes).
    (list(bench.ORDER), True, [("pki_scale", ["--scale", "10,100", "--json"]),
                               ("pki_community", ["--count", "5", "--json"]), ("lab", ["--quick", "--json"]),
                               ("clients", ["--quick", "--no-restore", "--json"]), ("broker", ["--quick", "--json"])]),
])
def test_the_benchmarks_run_in_an_order_that_needs_one_lab_at_most(names, quick, expected):
    assert [(key, args) for key, _module, args in bench.steps(names, quick, 300)] == expected


def test_the_brokers_goal_is_judged_on_a_full_run_and_its_profile_shown_when_missed():
    brokers = {"brokers": [{"brokers": 1, "fresh_seconds": 70.0, "rerun_seconds": 25.0, "rerun_ratio": 0.357},
                           {"brokers": 10, "fresh_seconds": 280.0, "rerun_seconds": 80.0, "rerun_ratio": 0.286}],
               "fresh_ratio": 4.0, "fresh_ratio_of": [1, 10], "goal": 3.0}
    full = {"meta": {"quick": False}, "lab_brokers": brokers}
    [verdict] = bench_report.verdicts(full)
    assert (verdict.key, verdict.issue, verdict.figure, verdict.goal, verdict.met) == (
        "lab_brokers", "11", "4.00x", "at most 3x", False)
    text = bench_report.markdown(full)
    assert "fresh converge of 10 brokers / of 1: 4.00 (issue 11: at most 3)" in text
    assert bench_report.WHY["lab_brokers"] in text
    met = {**full, "lab_brokers": {**brokers, "fresh_ratio": 2.5}}
    assert bench_report.verdicts(met)[0].met is True
    assert bench_report.WHY["lab_brokers"] not in bench_report.markdown(met)
