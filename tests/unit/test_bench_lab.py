"""scripts/bench-lab's summary: ratios taken within each round, then the median (the runs are benchmarks, never
tests: this checks the arithmetic and the report, not any figure of this machine)."""

from __future__ import annotations

from rampart import bench_lab


def test_each_ratio_is_taken_within_its_round_and_summarised_by_the_median():
    rounds = [{"fresh_seconds": 100.0, "rerun_seconds": 30.0, "audit_seconds": 25.0},
              {"fresh_seconds": 50.0, "rerun_seconds": 30.0, "audit_seconds": 20.0},
              {"fresh_seconds": 80.0, "rerun_seconds": 24.0, "audit_seconds": 40.0}]
    for r in rounds:
        r.update(rerun_ratio=r["rerun_seconds"] / r["fresh_seconds"],
                 audit_ratio=r["audit_seconds"] / r["fresh_seconds"])
    result = bench_lab.summary(rounds)
    # Per round: 0.3, 0.6, 0.3 and 0.25, 0.4, 0.5; the median of the ratios, not the ratio of the medians (0.375).
    assert result["median"]["rerun_ratio"] == 0.3
    assert result["median"]["audit_ratio"] == 0.4
    assert result["median"]["fresh_seconds"] == 80.0
    text = bench_lab.report(result)
    assert "round 2: fresh   50.0 s   re-run   30.0 s (0.60)   audit   20.0 s (0.40)" in text
    assert "median audit / fresh: 0.40 (issue 10: below 0.33)" in text
    assert "median re-run / fresh: 0.30 (issue 13: at most 0.40)" in text


def test_the_brokers_benchmark_compares_the_largest_count_with_the_smallest():
    rows = [{"brokers": 1, "fresh_seconds": 70.0, "rerun_seconds": 25.0, "rerun_ratio": 0.357},
            {"brokers": 10, "fresh_seconds": 245.0, "rerun_seconds": 80.0, "rerun_ratio": 0.327},
            {"brokers": 5, "fresh_seconds": 140.0, "rerun_seconds": 50.0, "rerun_ratio": 0.357}]
    result = bench_lab.brokers_summary(rows)
    assert result["fresh_ratio"] == 3.5 and result["fresh_ratio_of"] == [1, 10]
    text = bench_lab.report(result)
    assert " 10 broker(s): fresh  245.0 s   re-run   80.0 s (0.33)" in text
    assert "fresh converge of 10 brokers / of 1: 3.50 (issue 11: at most 3)" in text


def test_the_topology_benchmark_times_the_fresh_lab_its_rerun_and_its_audit(monkeypatch, tmp_path):
    seen, seconds = [], iter([120.0, 30.0, 20.0])
    monkeypatch.setattr(bench_lab, "timed", lambda root, cmd, log, what: seen.append(cmd) or next(seconds))
    monkeypatch.setattr(bench_lab.subprocess, "run", lambda *a, **k: None)  # scripts/lab down
    result = bench_lab.topology_round(tmp_path, tmp_path, "multi-site")
    assert seen == [["scripts/lab", "up", "--topology", "multi-site"],
                    ["scripts/lab", "up", "--topology", "multi-site", "--assert-unchanged"],
                    ["scripts/audit", "-i", ".lab/topology-multi-site"]]
    assert result == {"topology": "multi-site", "fresh_seconds": 120.0, "rerun_seconds": 30.0, "audit_seconds": 20.0,
                      "rerun_ratio": 0.25}
    assert bench_lab.report(result) == "topology multi-site: fresh 120.0 s   re-run 30.0 s (0.25)   audit 20.0 s"
