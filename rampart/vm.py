"""scripts/vmlab (rampart-vmlab): virtual machines with Debian's own kernel, for what containers cannot prove.

The containers of scripts/lab share this machine's kernel, which has no 802.1Q and no WireGuard module, and a
container is never rebooted. The VM lab runs the hosts of inventories/vmlab as QEMU guests booted with the
release's own kernel, so the tagged VLAN, kernel WireGuard, the firewall at boot and reboots are real (issue 12).

Images: debootstrap of the release with ``linux-image-amd64`` from the Debian archive this machine's apt uses,
made into an ext4 disk with ``mke2fs -d`` (no loop mount), cached by recipe under ``/var/cache/rampart/vm``
(``RAMPART_VM_CACHE``). A guest boots that disk's own kernel and initrd directly (``-kernel``/``-initrd``).

Guests: three NICs, each a real wire:
  * ``eth0``: QEMU's user-mode network, the management path. SSH is the only control path, as for a real server:
    ``127.0.0.1:<vm_ssh_port>`` on this machine forwards to the guest's port 22. The guest's SSH host key is read
    from its serial console (printed by the image at each boot), never trusted on first use.
  * ``eth1``: the trunk, a tap on the bridge ``rampart-vmtrunk`` (a plain switch: tagged frames and untagged
    ones alike). The broker's segment is a VLAN on it; this machine sits on the same wire untagged, the outsider.
  * ``eth2``: the wan, a tap on the bridge ``rampart-vmwan`` (``172.29.88.0/24``, this machine is ``.1``), where
    the WireGuard endpoints are.
Identity (hostname, the lab's SSH key) comes in on the kernel command line and is written once at first boot.

Acceleration: ``RAMPART_VM_ACCEL`` (``tcg`` by default, or ``kvm``). On this kind of machine /dev/kvm exists but
nested KVM is unusable (a guest kernel needed 90 s of wall time for its first 25 s and never reached userspace);
QEMU's TCG boots a guest to SSH in about 25 s. Use ``kvm`` on a machine with working hardware virtualisation.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rampart import cli, harness, lab, project

CACHE = Path(os.environ.get("RAMPART_VM_CACHE", "/var/cache/rampart/vm"))
ACCEL = os.environ.get("RAMPART_VM_ACCEL", "tcg")
TRUNK_BRIDGE = "rampart-vmtrunk"
WAN_BRIDGE = "rampart-vmwan"
WAN_HOST_ADDRESS = "172.29.88.1/24"
HOSTKEY_MARK = "rampart-vm-hostkey"

# What a VM needs beyond the container images' packages: its kernel, udev to name its NICs, and the tools an
# initramfs and an ext4 root need.
# And the packages the roles install on every broker VM besides Mosquitto (the nftables and fail2ban roles'), so the
# image carries them: dpkg under TCG took 92 s of a broker VM's first converge (fail2ban 72 s, nftables 20 s; 350 s
# in all, profile_tasks), and it runs natively when the image is built. The roles find them installed and configure
# them, as on a server that already had them. Not Mosquitto: Debian 12's comes from backports, which the role adds,
# and the role installs it without starting Debian's stock broker, which a package in the image would start at boot.
VM_ROLE_PACKAGES = ("nftables", "fail2ban", "python3-systemd")
VM_PACKAGES = (*harness.BASE_PACKAGES, "linux-image-amd64", "initramfs-tools", "udev", "kmod", "e2fsprogs",
               *VM_ROLE_PACKAGES)

# Run inside the debootstrapped tree after harness.FINALISE_SCRIPT (host keys made at first boot, machine-id
# empty, apt lists cleaned). The identity unit reads rampart.hostname= and rampart.authorized_key= (base64) from
# the kernel command line once; the host-key unit prints the guest's public host key on the serial console at
# every boot, which is how the control node learns it.
VM_FINALISE_SCRIPT = r"""
set -eu
cat > /etc/fstab <<'EOF'
LABEL=rampart-root / ext4 rw,errors=remount-ro 0 1
EOF
cat > /etc/systemd/network/05-rampart-mgmt.network <<'EOF'
# The management NIC (QEMU user-mode network): DHCP from QEMU. SSH reaches the guest only through it.
[Match]
Name=eth0

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
echo "nameserver 10.0.2.3" > /etc/resolv.conf
ln -sf /lib/systemd/system/systemd-networkd.service /etc/systemd/system/multi-user.target.wants/systemd-networkd.service
cat > /usr/local/sbin/rampart-vm-identity <<'EOF'
#!/bin/sh
# First boot: this guest's hostname and root's authorized key, from the kernel command line.
set -eu
name=""; key=""
for word in $(cat /proc/cmdline); do
  case "$word" in
    rampart.hostname=*) name="${word#rampart.hostname=}" ;;
    rampart.authorized_key=*) key="$(printf '%s' "${word#rampart.authorized_key=}" | base64 -d)" ;;
  esac
done
[ -n "$name" ] && [ -n "$key" ] || { echo "rampart-vm-identity: no rampart.hostname/authorized_key" >&2; exit 1; }
printf '%s\n' "$name" > /etc/hostname
hostname "$name"
install -d -m 0700 /root/.ssh
printf '%s\n' "$key" > /root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys
touch /etc/rampart-vm-identity
EOF
chmod 0755 /usr/local/sbin/rampart-vm-identity
cat > /etc/systemd/system/rampart-vm-identity.service <<'EOF'
[Unit]
Description=Set this VM's hostname and root's SSH key from the kernel command line (first boot)
ConditionPathExists=!/etc/rampart-vm-identity
Before=ssh.service systemd-networkd.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/rampart-vm-identity

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/rampart-vm-identity.service /etc/systemd/system/multi-user.target.wants/
cat > /etc/systemd/system/rampart-vm-hostkey.service <<'EOF'
[Unit]
Description=Print this VM's SSH host key on the serial console
After=ssh-hostkeys.service
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "rampart-vm-hostkey $(cut -d" " -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)" > /dev/ttyS0'

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/rampart-vm-hostkey.service /etc/systemd/system/multi-user.target.wants/
"""


def recipe_hash(platform: harness.Platform, mirror: str) -> str:
    recipe = json.dumps({"suite": platform.suite, "packages": VM_PACKAGES, "finalise": harness.FINALISE_SCRIPT,
                         "vm": VM_FINALISE_SCRIPT, "mirror": mirror, "security": platform.security_suite,
                         "version": 1}, sort_keys=True)
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Image:
    """A built VM image: its ext4 disk and the kernel and initrd inside it."""

    directory: Path

    @property
    def disk(self) -> Path:
        return self.directory / "disk.raw"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"


def build_image(platform: harness.Platform, mirror: str, target: Path) -> None:
    started = time.monotonic()
    harness.log(f"building the {platform.name} VM image from debootstrap {platform.suite} with its kernel")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"rampart-vm-{platform.name}-", dir=CACHE) as tmp:
        root = Path(tmp) / "root"
        res = harness.run(["debootstrap", "--variant=minbase", f"--include={','.join(VM_PACKAGES)}",
                           platform.suite, str(root), mirror], check=False)
        if res.returncode != 0:
            raise SystemExit(f"debootstrap {platform.suite} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
        (root / "etc/apt/sources.list").write_text(harness.sources_list(platform, mirror))
        harness.run(["chroot", str(root), "/bin/sh", "-c", harness.FINALISE_SCRIPT + VM_FINALISE_SCRIPT])
        out = Path(tmp) / "image"
        out.mkdir()
        for name, pattern in (("vmlinuz", "vmlinuz-*"), ("initrd.img", "initrd.img-*")):
            found = sorted((root / "boot").glob(pattern))
            if not found:
                raise SystemExit(f"the {platform.name} VM image has no /boot/{pattern}")
            shutil.copy2(found[-1], out / name)
        disk = out / "disk.raw"
        with disk.open("wb") as f:
            f.truncate(4 << 30)
        harness.run(["mke2fs", "-q", "-t", "ext4", "-L", "rampart-root", "-d", str(root), str(disk)])
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    harness.log(f"built the {platform.name} VM image in {time.monotonic() - started:.0f}s")


def ensure_images(names: list[str]) -> dict[str, Image]:
    """Build each platform's VM image unless one with the same recipe is cached; returns name -> image."""
    mirror = harness.debian_mirror()
    todo, images = [], {}
    for name in sorted(set(names)):
        platform = harness.PLATFORMS[name]
        target = CACHE / f"{name}-{recipe_hash(platform, mirror)}"
        images[name] = Image(target)
        if not Image(target).disk.exists():
            todo.append((platform, target))
    if todo:
        missing = [tool for tool in ("debootstrap", "mke2fs") if shutil.which(tool) is None]
        if missing:
            harness.apt_install(*[{"debootstrap": "debootstrap", "mke2fs": "e2fsprogs"}[tool] for tool in missing])
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            for fut in [pool.submit(build_image, p, mirror, t) for p, t in todo]:
                fut.result()
    return images


# --- the wire --------------------------------------------------------------------------------------------------

def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return harness.run(["ip", *args], check=check)


def link_exists(name: str) -> bool:
    return _ip("link", "show", name, check=False).returncode == 0


def forward_rule(bridge: str) -> list[str]:
    """The FORWARD rule that lets frames cross ``bridge``: with br_netfilter loaded (Docker loads it), bridged IP
    traffic goes through this machine's iptables, whose FORWARD policy Docker sets to DROP."""
    return ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]


def ensure_bridge(name: str, address: str | None = None) -> None:
    """A plain Linux bridge (no VLAN filtering: a switch that carries every frame). This machine's firewall lets
    everything cross it, so what reaches a guest is decided by the guests."""
    if not link_exists(name):
        _ip("link", "add", name, "type", "bridge")
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) and harness.run([tool, "-C", *forward_rule(name)], check=False).returncode != 0:
            harness.run([tool, "-I", *forward_rule(name)])
    if address and address.split("/")[0] not in _ip("-o", "addr", "show", "dev", name).stdout:
        _ip("addr", "add", address, "dev", name)
    _ip("link", "set", name, "up")


def ensure_tap(name: str, bridge: str) -> None:
    if not link_exists(name):
        _ip("tuntap", "add", name, "mode", "tap")
    _ip("link", "set", name, "master", bridge)
    _ip("link", "set", name, "up")


# --- the guests ------------------------------------------------------------------------------------------------

PROJECT = Path.cwd()
VM_DIR = PROJECT / ".vmlab"
# Topologies: the inventory each one converges. "full": every host of inventories/vmlab (the folder: hosts.yml and
# brokers.yml together); "brokers": the two broker VMs only (inventories/vmlab/brokers.yml; scripts/test vm).
TOPOLOGIES = {"full": Path("inventories/vmlab"), "brokers": Path("inventories/vmlab/brokers.yml")}
# Tests that need a host the topology lacks (pytest markers), deselected when it runs tests/vm; and vm_full, a test
# the brokers topology could run but that scripts/test's budget leaves to the full topology (docs/vmlab.md).
TOPOLOGY_DESELECTS = {"full": "", "brokers": "not vm_client and not vm_full"}
INVENTORY = PROJECT / TOPOLOGIES["full"]
VMLAB_JSON = VM_DIR / "vmlab.json"


def use_project(root: Path, topology: str = "full") -> None:
    global PROJECT, VM_DIR, INVENTORY, VMLAB_JSON
    PROJECT = root
    VM_DIR = root / ".vmlab"
    INVENTORY = root / TOPOLOGIES[topology]
    VMLAB_JSON = VM_DIR / "vmlab.json"
    lab.use_project(root)


@dataclass(frozen=True)
class Guest:
    name: str
    index: int
    platform: str
    ssh_port: int
    memory: int
    network: tuple = ()  # (key, value) pairs the tests read: segment, VLAN and wan addresses

    @property
    def folder(self) -> Path:
        return VM_DIR / self.name

    @property
    def taps(self) -> tuple[str, str]:
        return f"rv{self.index}t", f"rv{self.index}w"

    def mac(self, nic: int) -> str:
        return f"52:54:00:5a:{nic:02x}:{self.index:02x}"

    @property
    def pid(self) -> int | None:
        try:
            pid = int((self.folder / "qemu.pid").read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid


# Inventory values the description carries for the tests (literal values in inventories/vmlab).
NETWORK_VARS = ("vmlab_segment_address", "vmlab_segment_address6", "vlan_id", "vlan_interface", "vlan_parent",
                "vmlab_wan_address", "wireguard_addresses")


def guests(inventory: Path | None = None) -> list[Guest]:
    """The VMs of the topology's inventory, or of ``inventory`` (literal values only)."""
    res = subprocess.run([lab.venv_bin("ansible-inventory"), "-i", str(inventory or INVENTORY), "--list"],
                         capture_output=True, text=True, check=True, cwd=PROJECT, env=lab.ansible_env())
    hostvars = json.loads(res.stdout)["_meta"]["hostvars"]
    out = []
    for index, (name, hv) in enumerate(sorted(hostvars.items())):
        network = tuple((key, hv[key]) for key in NETWORK_VARS if key in hv)
        out.append(Guest(name, index, hv.get("vm_platform", "debian12"), int(hv["ansible_port"]),
                         int(hv.get("vm_memory", 768)), network))
    return out


def kernel_cmdline(guest: Guest, pubkey: str) -> str:
    key = base64.b64encode(pubkey.encode()).decode()
    return (f"root=LABEL=rampart-root rw console=ttyS0 quiet net.ifnames=0 panic=-1 "
            f"rampart.hostname={guest.name} rampart.authorized_key={key}")


def start(guest: Guest, image: Image, pubkey: str) -> bool:
    """Boot ``guest`` unless it runs; its disk is a copy of the image made at its first start. True if started."""
    if guest.pid:
        return False
    guest.folder.mkdir(parents=True, exist_ok=True)
    disk = guest.folder / "disk.raw"
    if not disk.exists():
        harness.run(["cp", "--sparse=always", str(image.disk), str(disk)])
    trunk, wan = guest.taps
    ensure_tap(trunk, TRUNK_BRIDGE)
    ensure_tap(wan, WAN_BRIDGE)
    console = guest.folder / "console.log"
    console.unlink(missing_ok=True)
    accel = "kvm" if ACCEL == "kvm" else "tcg"
    cmd = ["qemu-system-x86_64", "-name", f"rampart-vm-{guest.name}", "-machine", f"pc,accel={accel}",
           "-smp", "1", "-m", str(guest.memory), "-nodefaults", "-display", "none", "-vga", "none",
           "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", kernel_cmdline(guest, pubkey),
           "-drive", f"file={disk},if=virtio,format=raw",
           "-netdev", f"user,id=mgmt,hostfwd=tcp:127.0.0.1:{guest.ssh_port}-:22",
           "-device", f"virtio-net-pci,netdev=mgmt,mac={guest.mac(0)}",
           "-netdev", f"tap,id=trunk,ifname={trunk},script=no,downscript=no",
           "-device", f"virtio-net-pci,netdev=trunk,mac={guest.mac(1)}",
           "-netdev", f"tap,id=wan,ifname={wan},script=no,downscript=no",
           "-device", f"virtio-net-pci,netdev=wan,mac={guest.mac(2)}",
           "-serial", f"file:{console}", "-monitor", f"unix:{guest.folder / 'monitor.sock'},server,nowait",
           "-pidfile", str(guest.folder / "qemu.pid"), "-daemonize"]
    if shutil.which("qemu-system-x86_64") is None:
        harness.apt_install("qemu-system-x86")
    harness.run(cmd)
    return True


def console_host_key(guest: Guest, timeout: float) -> str:
    """The guest's ed25519 host key as its serial console printed it at this boot."""
    deadline = time.monotonic() + timeout
    console = guest.folder / "console.log"
    while time.monotonic() < deadline:
        text = console.read_text(errors="replace") if console.exists() else ""
        found = re.findall(rf"{HOSTKEY_MARK} (ssh-ed25519 [A-Za-z0-9+/=]+)", text)
        if found:
            return found[-1]
        if guest.pid is None:
            raise SystemExit(f"vmlab: {guest.name} stopped while booting; see {console}")
        time.sleep(0.5)
    raise SystemExit(f"vmlab: {guest.name} printed no SSH host key on its console within {timeout:.0f}s; "
                     f"see {console}")


def known_hosts_line(guest: Guest, key: str) -> str:
    return f"[127.0.0.1]:{guest.ssh_port} {key}"


def boot(guests_: list[Guest], images: dict[str, Image], key: Path, timeout: float = 180) -> dict[str, float]:
    """Start every guest that is not running and wait until each answers on SSH; returns name -> seconds taken."""
    pubkey = key.with_suffix(".pub").read_text().strip()
    ensure_bridge(TRUNK_BRIDGE)
    ensure_bridge(WAN_BRIDGE, WAN_HOST_ADDRESS)
    started = {g.name: time.monotonic() for g in guests_ if start(g, images[g.platform], pubkey)}
    lines = [known_hosts_line(g, console_host_key(g, timeout)) for g in guests_]
    (lab.SSH_DIR / "vmlab_known_hosts").write_text("\n".join(lines) + "\n")
    took = {}
    for g in guests_:
        wait_for_ssh(g, key, timeout)
        if g.name in started:
            took[g.name] = time.monotonic() - started[g.name]
    return took


def ssh_cmd(guest: Guest, key: Path, *command: str) -> list[str]:
    return ["ssh", "-i", str(key), "-p", str(guest.ssh_port),
            "-o", f"UserKnownHostsFile={lab.SSH_DIR / 'vmlab_known_hosts'}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "root@127.0.0.1", *command]


def wait_for_ssh(guest: Guest, key: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(ssh_cmd(guest, key, "true"), capture_output=True).returncode == 0:
            return
        time.sleep(1)
    raise SystemExit(f"vmlab: SSH to {guest.name} (127.0.0.1:{guest.ssh_port}) did not answer within {timeout:.0f}s")


def stop(guest: Guest, timeout: float = 60) -> bool:
    pid = guest.pid
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while guest.pid and time.monotonic() < deadline:
        time.sleep(0.2)
    if guest.pid:
        os.kill(pid, signal.SIGKILL)
    return True


# --- commands --------------------------------------------------------------------------------------------------

def playbook(name: str, *extra: str):
    lab.INVENTORY = INVENTORY
    return lab.playbook(name, *extra)


def up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    all_guests = guests()
    images = ensure_images([g.platform for g in all_guests])
    key = lab.ensure_ssh_key()
    took = boot(all_guests, images, key)
    for name, seconds in took.items():
        print(f"vmlab: {name} booted to SSH in {seconds:.1f}s")
    site = playbook("vmlab.yml", *args.ansible_args)
    if site.rc != 0:
        print(f"vmlab: converging playbooks/vmlab.yml failed (rc={site.rc})", file=sys.stderr)
        return site.rc
    VMLAB_JSON.write_text(json.dumps(describe(all_guests, key), indent=2) + "\n")
    print(f"\nvmlab: up in {time.monotonic() - started:.0f}s; changed={site.changed}; description: {VMLAB_JSON}")
    if args.assert_unchanged and (took or site.changed):
        print(f"vmlab: --assert-unchanged: this run changed something (booted: {sorted(took)}, "
              f"tasks changed: {site.changed})", file=sys.stderr)
        return 1
    return 0


def test(args: argparse.Namespace) -> int:
    if shutil.which("tcpdump") is None:  # the tests capture frames on the bridges
        harness.apt_install("tcpdump")
    args.assert_unchanged, args.ansible_args = False, []
    rc = up(args)
    if rc != 0:
        return rc
    reports = PROJECT / ".reports"
    reports.mkdir(exist_ok=True)
    deselect = TOPOLOGY_DESELECTS[args.topology]
    cmd = [lab.venv_bin("pytest"), "-v", "-p", "no:cacheprovider", f"--junitxml={reports / 'vm.xml'}",
           *(["-m", deselect] if deselect else []), str(PROJECT / "tests" / "vm"), *args.pytest_args]
    return subprocess.run(cmd, cwd=PROJECT, env=dict(os.environ, RAMPART_VMLAB=str(VMLAB_JSON))).returncode


def describe(all_guests: list[Guest], key: Path) -> dict:
    """What the VM tests read (.vmlab/vmlab.json): each guest's SSH path, platform and wire."""
    return {"ssh_key": str(key), "known_hosts": str(lab.SSH_DIR / "vmlab_known_hosts"),
            "trunk_bridge": TRUNK_BRIDGE, "wan_bridge": WAN_BRIDGE, "accel": ACCEL,
            "inventory": str(INVENTORY),
            "guests": [{"name": g.name, "platform": g.platform, "ssh_port": g.ssh_port,
                        "folder": str(g.folder), "taps": list(g.taps), **dict(g.network),
                        "monitor": str(g.folder / "monitor.sock")} for g in all_guests]}


def down(args: argparse.Namespace) -> int:
    # Every topology's guests are hosts of the full one: stop them all, whichever topology is up.
    every = guests(PROJECT / TOPOLOGIES["full"])
    stopped = [g.name for g in every if stop(g)]
    for g in every:
        for tap in g.taps:
            if link_exists(tap):
                _ip("link", "del", tap, check=False)
    for bridge in (TRUNK_BRIDGE, WAN_BRIDGE):
        if link_exists(bridge):
            _ip("link", "del", bridge, check=False)
        for tool in ("iptables", "ip6tables"):
            while shutil.which(tool) and harness.run([tool, "-D", *forward_rule(bridge)], check=False).returncode == 0:
                pass
    if VM_DIR.exists():
        shutil.rmtree(VM_DIR)
    print("vmlab: stopped " + (", ".join(stopped) if stopped else "nothing (no VM running)") +
          "; disks and bridges removed")
    return 0


def status(args: argparse.Namespace) -> int:
    rows = [f"{g.name}\t{g.platform}\t{f'running (pid {g.pid})' if g.pid else 'stopped'}\t"
            f"ssh -p {g.ssh_port} root@127.0.0.1" for g in guests()]
    print("\n".join(rows))
    return 0 if all(g.pid for g in guests()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rampart-vmlab", description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", metavar="DIR", help="the project directory (as for scripts/lab)")
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    common.add_argument("--topology", choices=sorted(TOPOLOGIES), default="full",
                        help="full (default): two broker VMs and a client VM (VPN peer, log collector); brokers: the "
                             "two broker VMs only (the vm step of scripts/test)")
    sub = parser.add_subparsers(dest="cmd", required=True)

    def command(name: str, func, text: str, **defaults) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], allow_abbrev=False, help=text)
        p.set_defaults(func=func, **defaults)
        return p

    command("up", up, "build the images if needed, boot the VMs and converge playbooks/vmlab.yml",
            extra="ansible_args").add_argument(
        "--assert-unchanged", action="store_true",
        help="fail unless the VMs already ran and matched the code (nothing booted, changed=0)")
    command("test", test, "up, then the kernel-bound tests (tests/vm) against it", extra="pytest_args")
    command("down", down, "stop the VMs, delete their disks, remove the bridges and taps")
    command("status", status, "show the VMs")
    parser.epilog = ("Arguments the lab does not know go on intact: to ansible-playbook after up (--tags, --limit, "
                     "-v), to pytest after test (-k, -x); a -- before them is optional.")
    args = cli.parse_passing_through(parser, argv)
    use_project(project.find(args.project), args.topology)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
