"""scripts/lab (rampart-lab): the local container lab (up | down | status).

``up`` starts one systemd container per host of inventories/lab on a Docker network with the static
addresses the inventory gives, authorises a lab SSH key, records the containers' real host keys,
converges playbooks/site.yml over SSH exactly as an operator would against servers, then writes
.lab/lab.json (see README) and prints how to connect. Running it again changes nothing.
``up --collection TARBALL`` converges from the collection tarball installed outside the project instead.
``up --topology NAME|FILE`` brings up the lab a topology file describes (rampart.topology; topologies/README.md):
its inventory is generated under .lab/topology-NAME/ (never written by hand), each host on its site's network with
its own Debian release. Without it, the lab is inventories/lab (what topologies/single.yml generates).
``up --brokers N`` scales the lab's site to N brokers (issue 11's benchmark): broker2..brokerN join broker1 on the
segment, each a broker of the perimeter with the same variables; the inventory is generated under .lab/brokers-N/
(never written by hand), and containers of an earlier, larger lab are removed.
Everything lives in the project directory (--project; see rampart.project).
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from rampart import cli, harness, project, results, topology

# The project directory (rampart.project's rule) and what lives in it; use_project() sets them from main().
PROJECT = Path.cwd()
LAB_DIR = PROJECT / ".lab"
INVENTORY = PROJECT / "inventories" / "lab"
SSH_DIR = LAB_DIR / "ssh"
LAB_JSON = LAB_DIR / "lab.json"
# The topology of the lab that is up (its name, or "single" for inventories/lab), so that an up of another one stops
# instead of mixing the two.
TOPOLOGY_STATE = LAB_DIR / "topology"
# Where the playbooks run from, with which ansible.cfg and collections path (the checkout's by default;
# `up --collection TARBALL` points them at a throw-away directory outside the checkout, see collection_run).
RUN_DIR = PROJECT
PLAYBOOK_DIR = PROJECT / "playbooks"
ANSIBLE_CFG = PROJECT / "ansible.cfg"
COLLECTIONS_PATH: str | None = None  # None: what ANSIBLE_CFG says
OWNER = "lab"
CONTAINER_PREFIX = "rampart-lab-"  # same rule as lab_container in inventories/lab/group_vars/all/lab.yml


def venv_bin(tool: str) -> str:
    candidate = Path(sys.executable).parent / tool
    return str(candidate) if candidate.exists() else tool


def use_project(root: Path) -> None:
    """Point the lab at a project directory (see rampart.project)."""
    global PROJECT, LAB_DIR, INVENTORY, SSH_DIR, LAB_JSON, RUN_DIR, PLAYBOOK_DIR, ANSIBLE_CFG, TOPOLOGY_STATE
    PROJECT = RUN_DIR = root
    LAB_DIR = root / ".lab"
    INVENTORY = root / "inventories" / "lab"
    SSH_DIR = LAB_DIR / "ssh"
    LAB_JSON = LAB_DIR / "lab.json"
    TOPOLOGY_STATE = LAB_DIR / "topology"
    PLAYBOOK_DIR = root / "playbooks"
    ANSIBLE_CFG = root / "ansible.cfg"


def ansible_env() -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE_CFG), ANSIBLE_FORCE_COLOR="0")
    if COLLECTIONS_PATH is not None:
        env.pop("ANSIBLE_COLLECTIONS_PATHS", None)
        env["ANSIBLE_COLLECTIONS_PATH"] = COLLECTIONS_PATH
    return env


@contextlib.contextmanager
def collection_run(tarball: Path) -> Iterator[Path]:
    """Run the playbooks from the collection tarball, as a user's own repository would, not from the checkout.

    Installs ``tarball`` offline into a throw-away directory outside the project, next to an ansible.cfg
    (the project's, with only that directory as collections_path) and playbooks that ``import_playbook``
    ``rampart.mqtt.site`` and ``rampart.mqtt.describe``; checks that Ansible resolves rampart.mqtt there
    (never the checkout's .collections link), and points playbook() at it. The inventory stays the project's.
    """
    global RUN_DIR, PLAYBOOK_DIR, ANSIBLE_CFG, COLLECTIONS_PATH
    tarball = tarball.resolve()
    if not tarball.is_file():
        raise SystemExit(f"lab: --collection {tarball}: no such file (make one with ansible-galaxy collection build)")
    saved = RUN_DIR, PLAYBOOK_DIR, ANSIBLE_CFG, COLLECTIONS_PATH
    work = Path(tempfile.mkdtemp(prefix="rampart-user-project-")).resolve()
    try:
        if work.is_relative_to(PROJECT):
            raise SystemExit(f"lab: {work} is inside the project {PROJECT}; set TMPDIR to a directory outside it")
        collections = work / "collections"
        _write_user_project(work, collections)
        RUN_DIR = PLAYBOOK_DIR = work
        ANSIBLE_CFG = work / "ansible.cfg"
        COLLECTIONS_PATH = str(collections)
        subprocess.run([venv_bin("ansible-galaxy"), "collection", "install", "--offline", "-p", str(collections),
                        str(tarball)], check=True, cwd=work, env=ansible_env())
        want = collections / "ansible_collections" / "rampart" / "mqtt"
        _check_resolution(work, want)
        print(f"lab: converging from the collection {tarball.name}, installed in {want}")
        yield work
    finally:
        RUN_DIR, PLAYBOOK_DIR, ANSIBLE_CFG, COLLECTIONS_PATH = saved
        shutil.rmtree(work, ignore_errors=True)


def _write_user_project(work: Path, collections: Path) -> None:
    """An ansible.cfg (the project's, with only ``collections`` as collections_path) and playbooks that
    ``import_playbook`` the installed collection's site and describe, in ``work``."""
    cfg = configparser.RawConfigParser()
    cfg.read(ANSIBLE_CFG)
    if not cfg.has_section("defaults"):
        cfg.add_section("defaults")
    cfg.remove_option("defaults", "inventory")
    cfg.set("defaults", "collections_path", str(collections))
    with (work / "ansible.cfg").open("w") as fh:
        cfg.write(fh)
    for name in ("site", "describe"):
        (work / f"{name}.yml").write_text(
            f"---\n- name: The {name} playbook of the installed collection\n"
            f"  ansible.builtin.import_playbook: rampart.mqtt.{name}\n")


def _check_resolution(work: Path, want: Path) -> None:
    """SystemExit unless Ansible, run in ``work``, resolves rampart.mqtt to ``want`` and sees no other copy."""
    # What Ansible resolves with this configuration, through the loader ansible-playbook uses.
    probe = ("import json; from ansible.plugins.loader import init_plugin_loader; init_plugin_loader(); "
             "from ansible.utils.collection_loader import AnsibleCollectionConfig as c; "
             "import ansible_collections.rampart.mqtt as m; "
             "print(json.dumps({'paths': list(c.collection_paths), 'mqtt': list(m.__path__)}))")
    seen = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                                     cwd=work, env=ansible_env()).stdout)
    # Every copy of rampart.mqtt Ansible could see (the checkout's .collections link must not be one).
    visible = [str(Path(p, "ansible_collections", "rampart", "mqtt").resolve()) for p in seen["paths"]
               if Path(p, "ansible_collections", "rampart", "mqtt").is_dir()]
    if [Path(p).resolve() for p in seen["mqtt"]] != [want] or visible != [str(want)]:
        raise SystemExit(f"lab: Ansible resolves rampart.mqtt to {seen['mqtt']} (collection paths "
                         f"{seen['paths']}), not only to the installed {want}")


def inventory() -> dict:
    """Hosts, addresses and lab settings, read from the lab inventory (literal values only)."""
    res = subprocess.run([venv_bin("ansible-inventory"), "-i", str(INVENTORY), "--list"], capture_output=True,
                         text=True, check=True, cwd=RUN_DIR, env=ansible_env())
    data = json.loads(res.stdout)
    hostvars = data["_meta"]["hostvars"]
    hosts = {name: hv for name, hv in sorted(hostvars.items())}
    first = next(iter(hosts.values()))
    return {"hosts": hosts, "network": first["lab_network"], "subnet": first["lab_network_subnet"],
            "platform": first["lab_platform"],
            # The perimeter (issue 4): more networks (the "wan") and containers Ansible does not manage.
            "networks": first.get("lab_networks") or {first["lab_network"]: first["lab_network_subnet"]},
            "unmanaged": first.get("lab_unmanaged") or []}


def plan(inv: dict) -> list[dict]:
    """One entry per lab container: name, container, network + ip (eth0), extra networks, managed or not.

    A host's first network is its ``lab_network`` (default: the lab's), at its ``ansible_host``; its
    ``lab_extra_networks`` ([{network, address}]) follow as eth1, eth2... Its image is its ``lab_platform``'s, and
    its ``lab_add_hosts`` ({name: address}) go into its /etc/hosts. Entries of ``lab_unmanaged``
    ([{name, network, address}]) are containers no play manages (the outsider vantage point).
    """
    out = []
    for host, hv in inv["hosts"].items():
        out.append({"name": host, "container": CONTAINER_PREFIX + host,
                    "network": hv.get("lab_network", inv["network"]), "ip": hv["ansible_host"],
                    "extra": [(n["network"], n["address"]) for n in hv.get("lab_extra_networks") or []],
                    "platform": hv.get("lab_platform", inv["platform"]), "hosts": hv.get("lab_add_hosts") or {},
                    "managed": True})
    for extra in inv["unmanaged"]:
        out.append({"name": extra["name"], "container": CONTAINER_PREFIX + extra["name"],
                    "network": extra["network"], "ip": extra["address"], "extra": [],
                    "platform": extra.get("platform", inv["platform"]), "hosts": {}, "managed": False})
    for entry in out:
        for network in [entry["network"], *[n for n, _ in entry["extra"]]]:
            if network not in inv["networks"]:
                raise SystemExit(f"lab: {entry['name']} uses network {network}, which lab_networks does not define")
    return out


# --brokers N: the extra brokers' addresses on the segment start here (broker2 at .102, up to broker40 at .140; the
# storm benchmark takes .151-.250).
EXTRA_BROKER_OFFSET = 100
MAX_BROKERS = 40


def scaled_inventory(brokers: int) -> Path:
    """inventories/lab with broker2..broker<brokers> added to the brokers and perimeter groups, written under
    .lab/brokers-<brokers>/ (two levels below the project, like inventories/lab, so the lab's
    ``{{ inventory_dir }}/../../.lab`` paths hold); its group_vars and host_vars are the lab's (links)."""
    if not 1 < brokers <= MAX_BROKERS:
        raise SystemExit(f"lab: --brokers {brokers}: give 1 to {MAX_BROKERS}")
    hosts = yaml.safe_load((INVENTORY / "hosts.yml").read_text())
    groups = hosts["all"]["children"]
    taken = {hv["ansible_host"] for g in groups.values() for hv in (g.get("hosts") or {}).values() if hv}
    segment = ipaddress.ip_network(yaml.safe_load((INVENTORY / "group_vars" / "all" / "lab.yml").read_text())
                                   ["lab_network_subnet"])
    for k in range(2, brokers + 1):
        address = str(segment.network_address + EXTRA_BROKER_OFFSET + k)
        if address in taken:
            raise SystemExit(f"lab: --brokers: broker{k}'s address {address} is another host's in inventories/lab")
        groups["brokers"]["hosts"][f"broker{k}"] = {"ansible_host": address}
        groups["perimeter"]["hosts"][f"broker{k}"] = None
    out = LAB_DIR / f"brokers-{brokers}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "hosts.yml").write_text(
        f"---\n# Generated by scripts/lab up --brokers {brokers} from inventories/lab/hosts.yml; never edit it.\n"
        + yaml.safe_dump(hosts, sort_keys=False))
    for part in ("group_vars", "host_vars"):
        link = out / part
        if not link.is_symlink():
            link.symlink_to(INVENTORY / part)
    return out


def lab_containers(fmt: str = "{{.Names}}") -> str:
    """``docker ps -a`` of the lab's containers (those with its owner label), one line each in ``fmt``."""
    return harness.docker("ps", "-a", "--filter", f"label={harness.OWNER_LABEL}={OWNER}", "--format", fmt).stdout


def remove_unplanned(containers: list[dict]) -> list[str]:
    """Remove the lab's containers the plan does not have (those of an earlier lab with more brokers)."""
    planned = {entry["container"] for entry in containers}
    extra = sorted(set(lab_containers().split()) - planned)
    if extra:
        harness.docker("rm", "-f", "-v", *extra)
    return extra


def ensure_ssh_key() -> Path:
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        harness.apt_install("openssh-client")
    SSH_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = SSH_DIR / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rampart-lab", "-f", str(key)],
                       check=True)
    return key


def authorise(container: str, pubkey: str) -> None:
    script = ('install -d -m 0700 /root/.ssh && touch /root/.ssh/authorized_keys && '
              'chmod 0600 /root/.ssh/authorized_keys && '
              'grep -qxF "$1" /root/.ssh/authorized_keys || echo "$1" >> /root/.ssh/authorized_keys')
    harness.docker("exec", container, "sh", "-c", script, "sh", pubkey)


def host_key_line(container: str, address: str) -> str:
    """The container's real ed25519 host key (read through Docker, so no trust-on-first-use)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        res = harness.docker("exec", container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub", check=False)
        if res.returncode == 0 and res.stdout.strip():
            kind, key = res.stdout.split()[:2]
            return f"{address} {kind} {key}"
        time.sleep(0.5)
    raise SystemExit(f"{container} has no SSH host key after 30s")


def wait_for_ssh(address: str, key: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    cmd = ["ssh", "-i", str(key), "-o", f"UserKnownHostsFile={SSH_DIR / 'known_hosts'}",
           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
           f"root@{address}", "true"]
    while time.monotonic() < deadline:
        if subprocess.run(cmd, capture_output=True).returncode == 0:
            return
        time.sleep(1)
    raise SystemExit(f"SSH to {address} did not work within {timeout:.0f}s")


def playbook(name: str, *extra: str) -> results.PlaybookResult:
    """Run a playbook, its output shown as it comes; what it did is read from the results callback."""
    cmd = [venv_bin("ansible-playbook"), "-i", str(INVENTORY), str(PLAYBOOK_DIR / name), *extra]
    return results.run(cmd, cwd=RUN_DIR, env=ansible_env(), echo=True)


def topology_inventory(spec: str) -> tuple[str, Path]:
    """The name and generated inventory (.lab/topology-NAME/) of --topology NAME (topologies/NAME.yml) or FILE."""
    path = Path(spec) if spec.endswith((".yml", ".yaml")) or "/" in spec else PROJECT / "topologies" / f"{spec}.yml"
    if not path.is_file():
        shipped = sorted(p.stem for p in (PROJECT / "topologies").glob("*.yml"))
        raise SystemExit(f"lab: --topology {spec}: no such file {path} (shipped: {', '.join(shipped)}; or give a file)")
    name = path.stem
    return name, topology.generate(topology.load(path), name, INVENTORY, LAB_DIR / f"topology-{name}")


def claim_topology(name: str) -> None:
    """Stop when a lab of another topology is up (its networks and addresses differ); record this one's name."""
    running = lab_containers().split()
    before = TOPOLOGY_STATE.read_text().strip() if TOPOLOGY_STATE.exists() else "single"
    if running and before != name:
        raise SystemExit(f"lab: a lab of the topology {before} is up; scripts/lab down first, then "
                         f"up --topology {name}")
    LAB_DIR.mkdir(parents=True, exist_ok=True)
    TOPOLOGY_STATE.write_text(name + "\n")


def up(args: argparse.Namespace) -> int:
    global INVENTORY
    if not 1 <= args.brokers <= MAX_BROKERS:
        raise SystemExit(f"lab: --brokers {args.brokers}: give 1 to {MAX_BROKERS}")
    if args.topology and args.brokers > 1:
        raise SystemExit("lab: --brokers scales the default lab (inventories/lab); it does not combine with --topology")
    name = "single"
    if args.topology:
        name, INVENTORY = topology_inventory(args.topology)
        print(f"lab: topology {name}; the inventory is {INVENTORY.relative_to(PROJECT)} (audit it with "
              f"scripts/audit -i {INVENTORY.relative_to(PROJECT)})", flush=True)
    if args.brokers > 1:
        INVENTORY = scaled_inventory(args.brokers)
        print(f"lab: {args.brokers} brokers; the inventory is {INVENTORY.relative_to(PROJECT)} (audit it with "
              f"scripts/audit -i {INVENTORY.relative_to(PROJECT)})", flush=True)
    with contextlib.ExitStack() as stack:
        if args.collection:
            stack.enter_context(collection_run(Path(args.collection)))
        return _up(args, name)


def _up(args: argparse.Namespace, name: str) -> int:
    started = time.monotonic()
    harness.ensure_docker()
    claim_topology(name)
    inv = inventory()
    containers = plan(inv)
    images = harness.ensure_images(sorted({entry["platform"] for entry in containers}))
    key = ensure_ssh_key()
    pubkey = (key.with_suffix(".pub")).read_text().strip()
    created = False
    for network, subnet in inv["networks"].items():
        created |= harness.ensure_network(network, subnet, OWNER)
    known = []
    gone = remove_unplanned(containers)
    if gone:
        created = True  # the lab changed
        print(f"lab: removed the containers this lab no longer has: {', '.join(gone)}", flush=True)
    print(f"lab: starting {len(containers)} systemd containers (those already running are kept)", flush=True)
    for entry in containers:
        created |= harness.run_systemd_container(entry["container"], images[entry["platform"]], entry["network"],
                                                 entry["ip"], hostname=entry["name"], owner=OWNER,
                                                 extra_hosts=entry["hosts"])
        for network, address in entry["extra"]:
            created |= harness.connect_network(entry["container"], network, address)
        if entry["managed"]:
            authorise(entry["container"], pubkey)
            known.append(host_key_line(entry["container"], entry["ip"]))
    (SSH_DIR / "known_hosts").write_text("\n".join(known) + "\n")
    managed = [entry for entry in containers if entry["managed"]]
    print(f"lab: waiting for SSH on {', '.join(entry['name'] for entry in managed)}", flush=True)
    for entry in managed:
        wait_for_ssh(entry["ip"], key)
    print(f"lab: converging playbooks/site.yml over SSH ({time.monotonic() - started:.0f}s so far)", flush=True)
    site = playbook("site.yml", *args.ansible_args)
    if site.rc != 0:
        print(f"lab: converging site.yml failed (rc={site.rc})", file=sys.stderr)
        return site.rc
    described = playbook("describe.yml", "-e", f"rampart_describe_path={LAB_JSON}")
    if described.rc != 0:
        return described.rc
    changed = site.changed + described.changed  # a re-run writes no new description either
    print(f"\nlab: up in {time.monotonic() - started:.0f}s; containers {'created' if created else 'unchanged'}; "
          f"site.yml changed={changed}")
    print_connect_help()
    if args.assert_unchanged and (created or changed):
        print(f"lab: --assert-unchanged: this run changed something (containers created: {created}, "
              f"tasks changed: {changed})", file=sys.stderr)
        return 1
    return 0


def print_connect_help() -> None:
    if not LAB_JSON.exists():
        return
    lab = json.loads(LAB_JSON.read_text())
    broker = lab["brokers"][0]
    pw = next((c for c in lab["clients"] if c["auth"] == "password" and c["password"] and c["subscribe"]), None)
    cert = next((c for c in lab["clients"] if c["auth"] == "certificate"), None)
    # The client container on the broker's segment (client1 in inventories/lab).
    client = next((p["container"] for p in lab.get("vantage_points") or []
                   if p["role"] == "segment_client" and p.get("broker", broker["name"]) == broker["name"]),
                  f"{CONTAINER_PREFIX}client1")
    print(f"\nBroker {broker['name']} at {broker['address']}:{broker['port']} (TLS name {broker['tls_server_name']}); "
          f"description in {LAB_JSON}")
    if pw:
        topic = pw["subscribe"][0]
        print("From the client container:\n"
              f"  docker exec -it {client} mosquitto_sub -h {broker['tls_server_name']} "
              f"-p {broker['port']} --cafile /etc/rampart/mqtt/ca.crt -u {pw['username']} -P '{pw['password']}' "
              f"-t '{topic}' -v")
    if cert:
        print(f"  docker exec -it {client} mosquitto_pub -h {broker['tls_server_name']} "
              f"-p {cert.get('port', broker['port'])} --cafile /etc/rampart/mqtt/ca.crt "
              f"--cert /etc/rampart/mqtt/{cert['name']}.crt --key /etc/rampart/mqtt/{cert['name']}.key "
              f"-t '{cert['publish'][0].replace('#', 'temp')}' -m 21.5")
    if pw:
        print("From this machine (Python, paho-mqtt):\n"
              f"  .venv/bin/rampart-probe --lab {LAB_JSON} sub {pw['name']} '{pw['subscribe'][0]}'")


def down(args: argparse.Namespace) -> int:
    gone = harness.remove_owned(OWNER) if harness.docker_answers() else []
    print("lab: removed " + (", ".join(gone) if gone else "nothing (no lab running)"))
    for done in (LAB_JSON, TOPOLOGY_STATE):
        if done.exists():
            done.unlink()
    if args.purge and LAB_DIR.exists():
        subprocess.run(["rm", "-rf", str(LAB_DIR)], check=True)
        print(f"lab: purged {LAB_DIR} (lab CA and SSH key)")
    return 0


def status(args: argparse.Namespace) -> int:
    if not harness.docker_answers():
        print("lab: Docker is not running; the lab is down")
        return 1
    rows = lab_containers("{{.Names}}\t{{.Status}}").strip()
    print(rows or "lab: no containers")
    if LAB_JSON.exists():
        print_connect_help()
    return 0 if rows else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rampart-lab", description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", metavar="DIR",
                        help=f"the project directory (default: ${project.ENV}, else the current directory or its "
                             "nearest parent with inventories/lab/, else the checkout of an editable install)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("up", allow_abbrev=False, help="create the lab and converge site.yml over SSH")
    p.add_argument("--assert-unchanged", action="store_true",
                   help="fail unless the lab already matched the code (no container created, changed=0)")
    p.add_argument("--collection", metavar="TARBALL",
                   help="converge with this rampart.mqtt collection tarball, installed offline outside the project "
                        "(as a user's own repository would), instead of the checkout's playbooks")
    p.add_argument("--topology", metavar="NAME|FILE",
                   help="the lab a topology file describes: a name of topologies/ (single, multi-site) or a file "
                        "(default: inventories/lab, which is what single generates); topologies/README.md")
    p.add_argument("--brokers", type=int, default=1, metavar="N",
                   help=f"brokers in the lab's site (1-{MAX_BROKERS}; default 1, the lab of inventories/lab): "
                        "broker2..N join broker1 on the segment (the inventory is generated under .lab/brokers-N/)")
    p.set_defaults(func=up, extra="ansible_args")
    p = sub.add_parser("down", allow_abbrev=False, help="remove every container, network and volume the lab made")
    p.add_argument("--purge", action="store_true", help="also delete .lab/ (lab CA, SSH key)")
    p.set_defaults(func=down)
    p = sub.add_parser("status", allow_abbrev=False, help="show the lab's containers and how to connect")
    p.set_defaults(func=status)
    parser.epilog = ("Arguments the lab does not know go on intact to ansible-playbook after up (--tags, --limit, -v); "
                     "a -- before them is optional.")
    args = cli.parse_passing_through(parser, argv)
    use_project(project.find(args.project))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
