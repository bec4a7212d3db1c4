#!/usr/bin/python3
"""Read, never write: what the audit needs from one host, printed as one JSON document.

Run by playbooks/audit.yml (ansible.builtin.script) with one argument, a JSON object of the paths the roles
use on this host (the roles' own variables, so no path is repeated here). Only reads: sockets, file
metadata (never the content of a key), package versions, unit properties, the firewall table, WireGuard's
peer list, the CRL (public), the collector's per-sender files and the senders' queue files.
Standard library only: it runs with the host's python3, like every Ansible module.
"""

from __future__ import annotations

import glob
import grp
import json
import os
import pwd
import re
import subprocess
import sys
import time

KEY_MARKERS = (b"PRIVATE KEY-----", b"PrivateKey")


def run(*argv: str) -> tuple[int, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return proc.returncode, proc.stdout


def meta(path: str) -> dict:
    st = os.lstat(path)
    return {"path": path, "mode": f"{st.st_mode & 0o7777:04o}", "owner": _name(pwd.getpwuid, st.st_uid),
            "group": _name(grp.getgrgid, st.st_gid), "mtime": int(st.st_mtime), "size": st.st_size}


def _name(lookup, ident: int) -> str:
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def files_under(*roots: str) -> list[str]:
    found = []
    for root in roots:
        for folder, _dirs, names in os.walk(root):
            found += [os.path.join(folder, n) for n in names]
    return sorted(found)


def listeners() -> list[dict]:
    rc, out = run("ss", "-Hlntup")
    rows = []
    for line in out.splitlines() if rc == 0 else []:
        cols = line.split()
        if len(cols) < 5:
            continue
        address, _, port = cols[4].rpartition(":")
        process = re.search(r'\(\("([^"]+)"', line)
        rows.append({"proto": cols[0], "address": address.strip("[]"), "port": int(port) if port.isdigit() else port,
                     "process": process.group(1) if process else None})
    return rows


def unit(name: str) -> dict:
    _, out = run("systemctl", "show", "--property=ActiveState,User,MainPID", name)
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    pid = props.get("MainPID", "0")
    user = None
    if pid.isdigit() and pid != "0" and os.path.exists(f"/proc/{pid}"):
        user = _name(pwd.getpwuid, os.stat(f"/proc/{pid}").st_uid)
    _, sec = run("systemd-analyze", "security", "--no-pager", name)
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", sec)
    return {"active": props.get("ActiveState"), "user": props.get("User") or "root", "process_user": user,
            "exposure": float(score.group(1)) if score else None}


def package(name: str) -> dict:
    rc, installed = run("dpkg-query", "-W", "-f=${Version}", name)
    _, policy = run("apt-cache", "policy", name)
    candidate = re.search(r"Candidate: (\S+)", policy)
    _, listed = run("dpkg-query", "-L", name)
    return {"installed": installed.strip() if rc == 0 else None,
            "candidate": candidate.group(1) if candidate else None, "files": listed.split()}


def private_keys(roots: list[str]) -> list[dict]:
    keys = []
    for path in files_under(*[r for r in roots if os.path.isdir(r)]):
        try:
            with open(path, "rb") as handle:
                head = handle.read(65536)
        except OSError:
            continue
        if any(m in head for m in KEY_MARKERS):
            keys.append(meta(path))
    return keys


def firewall(table: str) -> dict:
    rc, out = run("nft", "-j", "list", "table", "inet", table)
    return {"loaded": rc == 0, "table": json.loads(out)["nftables"] if rc == 0 else None}


def wireguard() -> list[dict]:
    rc, out = run("wg", "show", "all", "dump")
    peers = []
    for line in out.splitlines() if rc == 0 else []:
        cols = line.split("\t")
        if len(cols) == 9:  # interface, peer, psk, endpoint, allowed ips, handshake, rx, tx, keepalive
            peers.append({"interface": cols[0], "peer": cols[1], "endpoint": cols[3], "latest_handshake": int(cols[5]),
                          "keepalive": cols[8]})
    return peers


def collector(log_dir: str) -> dict:
    senders = {}
    for folder in sorted(glob.glob(os.path.join(log_dir, "*"))):
        if os.path.isdir(folder):
            times = [os.stat(p).st_mtime for p in files_under(folder)]
            senders[os.path.basename(folder)] = int(max(times)) if times else None
    return {"service": unit("rsyslog.service"), "senders": senders}


def main() -> None:
    paths = json.loads(sys.argv[1])
    facts = {"now": int(time.time()), "listeners": listeners(),
             "private_keys": private_keys(paths.get("key_roots", []))}
    if paths.get("broker"):
        b = paths["broker"]
        facts["mosquitto"] = {"unit": unit("mosquitto.service"), "package": package("mosquitto"),
                              "files": [meta(p) for p in files_under(*b["dirs"])], "managed": b["managed"]}
        if b.get("crl") and os.path.exists(b["crl"]):
            with open(b["crl"]) as handle:
                facts["mosquitto"]["crl_pem"] = handle.read()
    if paths.get("firewall_table"):
        facts["firewall"] = firewall(paths["firewall_table"])
    if paths.get("wireguard"):
        facts["wireguard"] = wireguard()
    if paths.get("collector_dir"):
        facts["collector"] = collector(paths["collector_dir"])
    if paths.get("queue_dir"):
        queue = glob.glob(os.path.join(paths["queue_dir"], "rampart_fwd_*"))
        facts["shipping"] = {"service": unit("rsyslog.service"), "queue_files": [meta(p) for p in queue]}
    json.dump(facts, sys.stdout)


if __name__ == "__main__":
    main()
