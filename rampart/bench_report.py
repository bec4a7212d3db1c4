"""The report of ``scripts/bench`` (``rampart.bench``): the goals with the figures and a verdict, each benchmark's
figures, and PNG plots, all from one ``results.json``. Pure functions of that dict, so the report can be written again
from a saved run (``scripts/bench --render DIR``) and tested without running a benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Where each goal's profile is written down: what the time goes to, and what would meet it. Shown in the report
# beside a goal that is not met.
WHY = {
    "clients_first": "Most of a first run at 10,000 is 9,000 new PBKDF2-SHA512 password hashes at 10,000 iterations "
                     "(about 17 s on two cores in the profiled run, hashed in threads); meeting 3x would take fewer "
                     "iterations, which the mosquitto role will not trade for speed. roles/mosquitto/README.md, "
                     "\"Scale\".",
    "clients_rerun": "Profile of a re-run at 10,000 (profile_tasks, 18.2 s; roles/mosquitto/README.md, \"Scale\"): "
                     "checking the variables 4.1 s, the file set (password file, ACL, configuration) 3.0 s, "
                     "publishing the certificate clients 2.3 s; the other tasks cost what they cost at 10. The "
                     "role's own Python takes about 0.1 s a pass over 10,000 clients; the time is ansible-core "
                     "2.19's templating, which converts every item of the list for each filter call (about 1.25 s a "
                     "call at 10,000, measured alone), and the role makes about five passes. One filter deriving "
                     "the ACL, the password users and the published names in one pass would save 2-4 s; 2x would "
                     "also need ansible-core to hand a large list to a filter without converting it item by item.",
    "pki_first": "A first run is one action call: key generation, signing and one fsync of the leaf files together. "
                 "roles/pki/README.md, \"Scale and the benchmark\".",
    "pki_rerun": "A re-run's fixed part is Ansible itself (the re-run at 10). At 10,000, handing the names through "
                 "the argument spec and the action costs about 2 s more, and checking the 10,000 existing leaves "
                 "(key, signature, names, renewal window, revocation, modes) about 4.5 s of CPU (profile in "
                 "roles/pki/README.md, \"Scale and the benchmark\"). 2x would mean not checking existing "
                 "certificates, which the role does not do.",
    "load_0": "The gap is the price of TLS: roles/mosquitto/README.md, \"Under load\".",
    "load_1": "The gap at QoS 1 is the price of TLS (perf on the hardened broker: 28 % of its time in OpenSSL's record "
              "layer, each MQTT packet its own SSL_write, TLS record and system call; QoS 1 has two packets a "
              "message each way), which the role does not trade. Coalescing packets into fewer records would meet "
              "it, and that is Mosquitto's code, not its configuration. The ratio moves between runs (0.81 in the "
              "run roles/mosquitto/README.md, \"Under load\", shows): the plain broker's rounds spread widest.",
    "handshakes": "The signature is a small part of a full handshake: an ECDSA P-256 signature takes 0.019 ms here, "
                  "an RSA-2048 one 0.244 ms, and the rest of a handshake (X25519, key schedule, OpenSSL's setup, the "
                  "kernel's accept and close) about 0.45 ms of listener CPU for both, so RSA costs at most about 1.5x "
                  "ECDSA. 2x would need a handshake cheaper than the RSA signature itself. "
                  "roles/mosquitto/README.md, \"TLS handshakes: ECDSA against RSA\".",
    "lab_brokers": "Every broker runs the whole site.yml on the same 2 cores as the controller: the fresh converge "
                   "grows by about 16 s a broker (73 s for 1, 137 s for 5, 222 s for 10 in session 25's run), and "
                   "at 10 brokers the controller alone (ansible-playbook, its forks and SSH) used 72 CPU-seconds in "
                   "a 72 s re-run (profile_tasks: no task stands out; each broker adds its own round trips to every "
                   "task). On a real fleet each broker's work runs on its own CPU and only the controller's part "
                   "grows; here 3x would need fewer module runs per host (more tasks batched, as file_set does) or a "
                   "machine with more cores. README, \"The lab\".",
    "lab_rerun": "roles/wiring/README.md, \"What prepare.yml reads once\": where a re-run's time goes.",
    "lab_audit": "docs/audit.md, \"Time\": where the audit's time goes.",
}


@dataclass(frozen=True)
class Verdict:
    key: str
    issue: str
    what: str
    figure: str
    goal: str
    met: bool | None  # None: not judged (a quick run's small size, or not measured)


def _by_count(runs: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {r["count"]: r for r in runs}


def _judge(quick: bool, met: bool) -> bool | None:
    return None if quick else met


def _scaling_verdicts(results: dict[str, Any], quick: bool) -> list[Verdict]:
    out = []
    if "clients" in results:
        c = results["clients"]
        at = f"N={c['largest']:,} / N={c['smallest']:,}"
        out += [Verdict("clients_rerun", "13", f"clients: idempotent re-run, {at}", f"{c['rerun_ratio']:.2f}x",
                        "at most 2x", _judge(quick, c["rerun_ratio"] <= 2)),
                Verdict("clients_first", "13", f"clients: first run, {at}", f"{c['first_ratio']:.2f}x",
                        "at most 3x", _judge(quick, c["first_ratio"] <= 3))]
    if "pki_scale" in results:
        p = results["pki_scale"]
        largest = _by_count(p["runs"])[p["largest"]]
        out += [Verdict("pki_first", "13", f"certificates: first run at N={p['largest']:,}",
                        f"{largest['first_seconds']:.1f} s", "under 60 s at 10,000",
                        _judge(quick, largest["first_seconds"] < 60)),
                Verdict("pki_rerun", "13", f"certificates: re-run, N={p['largest']:,} / N={p['smallest']:,}",
                        f"{p['rerun_ratio']:.2f}x", "at most 2x", _judge(quick, p["rerun_ratio"] <= 2))]
    if "pki_community" in results and results["pki_community"].get("ratio") is not None:
        p = results["pki_community"]
        out.append(Verdict("pki_community", "13", f"certificates: per-item community.crypto loops / the pki role, "
                           f"N={p['count']:,}", f"{p['ratio']:.0f}x", "keep the 172-245x measured at 1,000", None))
    return out


def _lab_and_broker_verdicts(results: dict[str, Any], quick: bool) -> list[Verdict]:
    out = []
    lab = results.get("lab")
    if lab and not lab.get("quick"):
        med = lab["median"]
        out += [Verdict("lab_rerun", "13", "lab: idempotent re-run / fresh (median of the rounds)",
                        f"{med['rerun_ratio']:.2f}", "at most 0.40", _judge(quick, med["rerun_ratio"] <= 0.40)),
                Verdict("lab_audit", "10", "lab: audit / fresh (median of the rounds)", f"{med['audit_ratio']:.2f}",
                        "below 0.33", _judge(quick, med["audit_ratio"] < 1 / 3))]
    brokers = results.get("lab_brokers")
    if brokers:
        low, high = brokers["fresh_ratio_of"]
        out.append(Verdict("lab_brokers", "11", f"lab: fresh converge of {high} brokers in one site / of {low}",
                           f"{brokers['fresh_ratio']:.2f}x", f"at most {brokers['goal']:g}x",
                           _judge(quick, brokers["fresh_ratio"] <= brokers["goal"])))
    broker = results.get("broker", {})
    if "load" in broker:
        load = broker["load"]
        for qos in ("0", "1"):
            out.append(Verdict(f"load_{qos}", "13", f"broker: hardened / plain, QoS {qos}, {load['pairs']} pairs",
                               f"{load['ratios'][qos]:.2f}", f"at least {load['goal']:g}",
                               _judge(quick, load["ratios"][qos] >= load["goal"])))
    if "handshakes" in broker:
        h = broker["handshakes"]
        out.append(Verdict("handshakes", "13", "broker: TLS handshakes/s, ECDSA P-256 / RSA-2048",
                           f"{h['ratio']:.2f} ({h['ratio_per_listener_cpu_second']:.2f} per listener CPU-second)",
                           f"at least {h['goal']:g}", _judge(quick, h["ratio"] >= h["goal"])))
    if "acl" in broker:
        a = broker["acl"]
        out.append(Verdict("acl", "13", f"broker: QoS 1 rate with {a['sizes']['large']['acl_lines']:,} ACL lines / "
                           f"with {a['sizes']['small']['acl_lines']:,}", f"{a['ratio']:.2f}", "measured (no goal)",
                           None))
    if "storm" in broker:
        s = broker["storm"]
        drops = s["firewall_drops"]
        out.append(Verdict("storm", "13", f"broker: restart with {s['sessions']:,} sessions ({s['per_source']} per "
                           f"address, {s['limits_from']} limits): until all are back", f"{_seconds(s)}; firewall "
                           f"dropped {drops['rate']} (rate) and {drops['cap']} (cap); {s['never_back']} never back",
                           "measured: defaults chosen from it (nftables README)", None))
    return out


def _seconds(storm: dict[str, Any]) -> str:
    value = storm.get("all_back_seconds")
    return "not all back" if value is None else f"{value:.1f} s"


def verdicts(results: dict[str, Any]) -> list[Verdict]:
    quick = bool(results.get("meta", {}).get("quick"))
    return _scaling_verdicts(results, quick) + _lab_and_broker_verdicts(results, quick)


def _mark(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "-"}[met]


def goals_text(results: dict[str, Any]) -> str:
    """One line a goal, for the terminal."""
    lines = [f"{v.what}: {v.figure} (goal: {v.goal}; {_mark(v.met).strip('*')})" for v in verdicts(results)]
    if results.get("meta", {}).get("quick"):
        lines.append("(quick sizes: figures are shown, no goal is judged)")
    return "\n".join(lines)


# --- the Markdown report ---------------------------------------------------------------------------------------

def _load_with_int_keys(load: dict[str, Any]) -> dict[str, Any]:
    """bench_broker's load result as its report function takes it (JSON made the QoS keys strings)."""
    return {**load, "runs": {side: {int(q): run for q, run in runs.items()} for side, runs in load["runs"].items()},
            "ratios": {int(q): ratio for q, ratio in load["ratios"].items()}}


def _header(meta: dict[str, Any]) -> list[str]:
    m = meta.get("machine", {})
    took = ", ".join(f"{k} {v:g} s" for k, v in meta.get("seconds", {}).items())
    lines = ["# Rampart benchmarks", "",
             f"- command: `{meta.get('command', 'scripts/bench')}`" + (" (quick sizes)" if meta.get("quick") else ""),
             f"- started {meta.get('started', '?')}, revision {meta.get('revision', '?')}",
             f"- machine: {m.get('cores', '?')} cores, {m.get('cpu') or 'CPU unknown'}, kernel {m.get('kernel', '?')}",
             f"- time per benchmark: {took or '-'}"
             + (f"; {meta['total_seconds']:g} s in all" if "total_seconds" in meta else "")]
    if meta.get("lab_started_by_bench"):
        lines.append("- no lab was up: this run started one with `scripts/lab up` (not timed)")
    lines += ["", "Every figure is from this one run; the runs are checked by their benchmark (each converge's "
              "changed count, every message delivered in order, every handshake completed), the figures are not "
              "asserted anywhere. On a 2-core machine they move by about 30 % between runs."]
    return lines


def _goals(results: dict[str, Any]) -> list[str]:
    vs = verdicts(results)
    lines = ["", "## Goals", "", "| issue | what | figure | goal | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {v.issue} | {v.what} | {v.figure} | {v.goal} | {_mark(v.met)} |" for v in vs]
    if results.get("meta", {}).get("quick"):
        lines += ["", "Quick sizes: the figures are shown so that the report cannot rot; no goal is judged at them."]
    missed = [v for v in vs if v.met is False]
    if missed:
        lines += ["", "### Why a goal is not met, and what would meet it", ""]
        lines += [f"- **{v.what}** ({v.figure}; goal {v.goal}): {WHY.get(v.key, 'not profiled yet.')}" for v in missed]
    return lines


def _scaling_tables(results: dict[str, Any]) -> list[str]:
    lines = []
    sections = [("clients", "Clients: `playbooks/broker.yml` on the lab's brokers with N clients more (every tenth a "
                 "certificate client)"), ("pki_scale", "Client certificates: the pki role's one bulk task, N new, "
                 "then the idempotent re-run")]
    for key, title in sections:
        if key not in results:
            continue
        lines += ["", f"### {title}", "", "| N | first run | re-run (changed=0) |", "|---|---|---|"]
        lines += [f"| {r['count']:,} | {r['first_seconds']:.2f} s | {r['rerun_seconds']:.2f} s |"
                  for r in results[key]["runs"]]
    pc = results.get("pki_community")
    if pc:
        lines += ["", f"### {pc['count']:,} client certificates: the pki role against per-item community.crypto loops",
                  "", "| | seconds |", "|---|---|",
                  f"| (a) the pki role, one bulk task | {pc['ours_seconds']:.2f} |",
                  f"| (b) community.crypto: openssl_privatekey, openssl_csr_pipe, x509_certificate (ownca), one loop "
                  f"of N each | {pc['community_seconds']:.2f} |",
                  f"| (c) the pki role again, changed=0 | {pc['ours_again_seconds']:.2f} |",
                  "", f"(b) / (a): **{pc['ratio']:.1f}x**"]
    if lines:
        plot = ["", "![time against N](scaling.png)"] if {"clients", "pki_scale"} & set(results) else []
        lines = ["", "## Scaling", *plot, *lines]
    return lines


def _lab_section(lab: dict[str, Any] | None, brokers: dict[str, Any] | None = None) -> list[str]:
    from rampart import bench_lab
    lines = []
    if lab:
        lines += ["", "## The lab: fresh, idempotent re-run, audit", "", "![the lab's rounds](lab.png)", "", "```",
                  bench_lab.report(lab), "```"]
    if brokers:
        lines += ["", "## The lab with 1, 5 and 10 brokers in one site (`scripts/lab up --brokers N`)", "", "```",
                  bench_lab.report(brokers), "```"]
    return lines


def _broker_sections(broker: dict[str, Any] | None) -> list[str]:
    if not broker:
        return []
    from rampart import bench_broker
    lines = ["", "## The broker", "", "![the broker](broker.png)"]
    titles = {"load": "The hardened broker against the plain one", "handshakes": "TLS handshakes: ECDSA against RSA",
              "acl": "A large ACL file", "storm": "Reconnect storm"}
    for name, title in titles.items():
        if name in broker:
            result = _load_with_int_keys(broker[name]) if name == "load" else broker[name]
            lines += ["", f"### {title}", "", bench_broker.REPORTS[name](result)]
    return lines


def markdown(results: dict[str, Any]) -> str:
    lines = [*_header(results.get("meta", {})), *_goals(results), *_scaling_tables(results),
             *_lab_section(results.get("lab"), results.get("lab_brokers")), *_broker_sections(results.get("broker"))]
    return "\n".join(lines) + "\n"


# --- the plots -------------------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _plot_scaling(plt, results: dict[str, Any], path: Path) -> bool:
    panels = [(k, t) for k, t in (("clients", "clients (playbooks/broker.yml, lab)"),
                                  ("pki_scale", "client certificates (pki role)")) if k in results]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels, strict=True):
        runs = results[key]["runs"]
        counts = [r["count"] for r in runs]
        # The first run's figures above its points, the re-run's below (they are close at small N).
        for field, label, marker, dy in (("first_seconds", "first run", "o", 6),
                                         ("rerun_seconds", "re-run (changed=0)", "s", -12)):
            values = [r[field] for r in runs]
            ax.plot(counts, values, marker=marker, label=label)
            for x, y in zip(counts, values, strict=True):
                ax.annotate(f"{y:.1f}" if y >= 10 else f"{y:.2f}", (x, y), textcoords="offset points",
                            xytext=(4, dy), fontsize=8)
        ax.set_xscale("log")
        ax.set_xticks(counts, [f"{c:,}" for c in counts])
        ax.minorticks_off()
        ax.set_ylim(bottom=0)
        ax.set_xlabel("N (log scale)")
        ax.set_ylabel("seconds")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _bars(ax, groups: list[str], series: dict[str, list[float]], ylabel: str, title: str) -> None:
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=label)
        ax.bar_label(bars, fmt="{:,.0f}" if max(values, default=0) >= 100 else "{:.2f}", fontsize=7)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def _broker_panels(broker: dict[str, Any]) -> list[tuple[list[str], dict[str, list[float]], str, str]]:
    panels = []
    if "load" in broker:
        runs = broker["load"]["runs"]
        sides = ("hardened", "plain")
        panels.append((["QoS 0", "QoS 1"], {s: [runs[s][q]["messages_per_second"] for q in ("0", "1")] for s in sides},
                       "messages/s", f"throughput, {broker['load']['pairs']} pairs"))
        panels.append((["QoS 0 p50", "QoS 0 p99", "QoS 1 p50", "QoS 1 p99"],
                       {s: [runs[s][q][f"latency_{p}_ms"] for q in ("0", "1") for p in ("p50", "p99")] for s in sides},
                       "ms", "latency"))
    if "handshakes" in broker:
        runs = broker["handshakes"]["runs"]
        panels.append((list(runs), {"handshakes/s": [r["handshakes_per_second"] for r in runs.values()],
                                    "per listener CPU-s": [r["handshakes_per_listener_cpu_second"]
                                                           for r in runs.values()]}, "handshakes", "TLS handshakes"))
    if "acl" in broker:
        sizes = broker["acl"]["sizes"]
        panels.append(([f"{s['acl_lines']:,} ACL lines" for s in sizes.values()],
                       {"QoS 1 messages/s": [s["messages_per_second"] for s in sizes.values()]}, "messages/s",
                       "ACL size"))
    return panels


def _plot_broker(plt, broker: dict[str, Any] | None, path: Path) -> bool:
    panels = _broker_panels(broker or {})
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        _bars(ax, *panel)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _plot_lab(plt, lab: dict[str, Any] | None, path: Path) -> bool:
    if not lab:
        return False
    fields = [("rerun_seconds", "re-run"), ("audit_seconds", "audit")]
    if not lab.get("quick"):
        fields.insert(0, ("fresh_seconds", "fresh"))
    rounds = lab["rounds"]
    fig, ax = plt.subplots(figsize=(6, 4))
    _bars(ax, [f"round {n}" for n in range(1, len(rounds) + 1)], {label: [r[f] for r in rounds] for f, label in fields},
          "seconds", "the lab: fresh scripts/lab up, its re-run, the audit")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write(results: dict[str, Any], out: Path) -> list[Path]:
    """report.md and the plots in ``out`` (plots of an earlier run there are removed first); the files written."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    plt = _pyplot()
    written = []
    for name, draw, data in (("scaling.png", _plot_scaling, results), ("broker.png", _plot_broker,
                                                                       results.get("broker")),
                             ("lab.png", _plot_lab, results.get("lab"))):
        if draw(plt, data, out / name):
            written.append(out / name)
    report = out / "report.md"
    report.write_text(markdown(results))
    return [report, *written]
