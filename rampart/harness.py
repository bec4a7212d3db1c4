"""Container harness shared by the lab (scripts/lab) and Molecule.

Three jobs, nothing else:
  * make sure a Docker daemon answers (install Debian's docker.io and start dockerd if needed);
  * build Debian base images with systemd and python3 from debootstrap (no registry is reachable),
    reusing an image as long as its recipe has not changed;
  * run systemd-as-PID-1 containers with the capability set that works on this kind of machine
    (``--privileged`` does not).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rampart import collection

DOCKERD_LOG = Path("/var/log/rampart-dockerd.log")
IMAGE_REPO = "rampart"
RECIPE_LABEL = "org.rampart.recipe"
OWNER_LABEL = "org.rampart.owner"

# Packages every base image carries: systemd as init, python3 for Ansible, iproute2/procps for
# tests, openssh-server so the lab is managed over SSH exactly like a real server.
BASE_PACKAGES = (
    "python3",
    "python3-apt",
    "systemd",
    "systemd-sysv",
    "dbus",
    "iproute2",
    "procps",
    "ca-certificates",
    "openssh-server",
)

# The capability set from LAB.md that boots systemd and allows nftables and tun; --privileged fails here.
SYSTEMD_RUN_ARGS = (
    "--cap-add", "SYS_ADMIN",
    "--cap-add", "NET_ADMIN",
    "--device", "/dev/net/tun",
    "--security-opt", "seccomp=unconfined",
    "--security-opt", "apparmor=unconfined",
    "--cgroupns=host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run",
    "--tmpfs", "/run/lock",
    "--tmpfs", "/tmp",  # noqa: S108 - a tmpfs inside the container, not a temp file here
    "--stop-signal", "SIGRTMIN+3",
)
SYSTEMD_COMMAND = "/lib/systemd/systemd"


@dataclass(frozen=True)
class Platform:
    """A Debian release the kit supports, and the image built for it."""

    name: str
    suite: str
    security_suite: str

    @property
    def image(self) -> str:
        return f"{IMAGE_REPO}/{self.name}:latest"


PLATFORMS = {
    "debian12": Platform("debian12", "bookworm", "bookworm-security"),
    "debian13": Platform("debian13", "trixie", "trixie-security"),
}

# Run inside the debootstrapped tree before it is imported. Host keys are made per container
# at first boot (a shared key in an image would be the same on every lab host).
FINALISE_SCRIPT = r"""
set -eu
rm -f /etc/ssh/ssh_host_*
cat > /etc/systemd/system/ssh-hostkeys.service <<'UNIT'
[Unit]
Description=Generate this container's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/ssh-hostkeys.service /etc/systemd/system/multi-user.target.wants/ssh-hostkeys.service
# No consoles in a container; keep the boot quiet and fast.
for u in getty@tty1.service console-getty.service systemd-firstboot.service; do
  ln -sf /dev/null /etc/systemd/system/$u
done
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
# Empty lists look fresh to apt's cache_valid_time (it reads the folder's mtime): make them look old.
touch -d 2000-01-01 /var/lib/apt/lists
"""


def log(msg: str) -> None:
    print(f"[harness] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], check: bool = True, capture: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, text=True, capture_output=capture, **kw)


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["docker", *args], check=check)


def docker_answers() -> bool:
    return shutil.which("docker") is not None and docker("info", check=False).returncode == 0


def apt_install(*packages: str) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log(f"installing {' '.join(packages)} from Debian's archive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", *packages], env=env)


def ensure_docker(timeout: float = 60.0) -> None:
    """Make sure a Docker daemon answers; install and start Debian's docker.io when none does."""
    if docker_answers():
        return
    if shutil.which("dockerd") is None:
        apt_install("docker.io")
    log(f"starting dockerd (log: {DOCKERD_LOG})")
    with open(DOCKERD_LOG, "ab") as out:
        subprocess.Popen(["dockerd"], stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if docker_answers():
            return
        time.sleep(1)
    raise SystemExit(f"dockerd did not answer within {timeout:.0f}s; see {DOCKERD_LOG}")


def os_codename(os_release: Path = Path("/etc/os-release")) -> str:
    """This machine's Debian codename (VERSION_CODENAME in /etc/os-release)."""
    for line in os_release.read_text().splitlines() if os_release.exists() else []:
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME" and value.strip('"'):
            return value.strip('"')
    raise SystemExit(f"harness: {os_release} names no VERSION_CODENAME; set RAMPART_DEBIAN_MIRROR to the Debian "
                     "archive URL to build the lab images from")


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian archive this machine's own apt sources use for its release (no other is assumed reachable).

    RAMPART_DEBIAN_MIRROR overrides it. Reads sources.list and sources.list.d/*.list and *.sources (one-line
    and deb822 formats) like apt; stops with what it read and the fix when no source serves the release.
    """
    override = os.environ.get("RAMPART_DEBIAN_MIRROR")
    if override:
        return override.rstrip("/")
    apt_sources = collection.module_utils("apt_sources")
    listed = (p for pattern in apt_sources.SOURCES_DIR_PATTERNS for p in (apt_dir / "sources.list.d").glob(pattern))
    paths = [apt_dir / "sources.list", *sorted(listed)]
    files = {str(p): p.read_text() for p in paths if p.is_file()}
    suite = os_codename()
    mirror = apt_sources.debian_archive(files, suite)
    if mirror is None:
        raise SystemExit("harness: " + apt_sources.not_found_message(
            list(files), suite, "set RAMPART_DEBIAN_MIRROR to the Debian archive URL to build the lab images from"))
    return mirror


def recipe_hash(platform: Platform, mirror: str) -> str:
    recipe = json.dumps(
        {"suite": platform.suite, "packages": BASE_PACKAGES, "finalise": FINALISE_SCRIPT,
         "mirror": mirror, "security": platform.security_suite, "version": 2},
        sort_keys=True,
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def image_recipe(image: str) -> str | None:
    res = docker("image", "inspect", "--format", "{{json .Config.Labels}}", image, check=False)
    if res.returncode != 0:
        return None
    labels = json.loads(res.stdout.strip() or "null") or {}
    return labels.get(RECIPE_LABEL)


def sources_list(platform: Platform, mirror: str) -> str:
    security = mirror.rsplit("/", 1)[0] + "/debian-security"
    return (
        f"deb {mirror} {platform.suite} main\n"
        f"deb {mirror} {platform.suite}-updates main\n"
        f"deb {security} {platform.security_suite} main\n"
    )


def build_image(platform: Platform, mirror: str, digest: str) -> None:
    started = time.monotonic()
    log(f"building {platform.image} from debootstrap {platform.suite} ({mirror})")
    with tempfile.TemporaryDirectory(prefix=f"rampart-{platform.name}-") as tmp:
        root = Path(tmp) / "root"
        res = run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                   platform.suite, str(root), mirror], check=False)
        if res.returncode != 0:
            raise SystemExit(f"debootstrap {platform.suite} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
        (root / "etc/apt/sources.list").write_text(sources_list(platform, mirror))
        run(["chroot", str(root), "/bin/sh", "-c", FINALISE_SCRIPT])
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            ["docker", "import",
             "--change", f"LABEL {RECIPE_LABEL}={digest}",
             "--change", f'CMD ["{SYSTEMD_COMMAND}"]',
             "-", platform.image],
            stdin=tar.stdout, capture_output=True, text=True)
        tar.stdout.close()
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise SystemExit(f"docker import of {platform.image} failed: {imp.stderr}")
    log(f"built {platform.image} in {time.monotonic() - started:.0f}s")


def ensure_images(names: list[str] | None = None) -> dict[str, str]:
    """Build each platform's image unless one with the same recipe exists; returns name -> image."""
    ensure_docker()
    mirror = debian_mirror()
    wanted = [PLATFORMS[n] for n in (names or list(PLATFORMS))]
    todo = []
    for platform in wanted:
        digest = recipe_hash(platform, mirror)
        if image_recipe(platform.image) != digest:
            todo.append((platform, digest))
    if todo:
        # Once, before the builds: two apt-get runs side by side fight over apt's lock, and one fails.
        if shutil.which("debootstrap") is None:
            apt_install("debootstrap")
        # debootstrap is network- and disk-bound: build the platforms side by side.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            for fut in [pool.submit(build_image, p, mirror, d) for p, d in todo]:
                fut.result()
    return {p.name: p.image for p in wanted}


def container_state(name: str) -> str | None:
    res = docker("container", "inspect", "--format", "{{.State.Status}}", name, check=False)
    return res.stdout.strip() if res.returncode == 0 else None


def ensure_network(name: str, subnet: str, owner: str) -> bool:
    """Create a Docker network with a fixed subnet unless it exists; True when created."""
    if docker("network", "inspect", name, check=False).returncode == 0:
        return False
    docker("network", "create", "--subnet", subnet, "--label", f"{OWNER_LABEL}={owner}", name)
    return True


def run_systemd_container(name: str, image: str, network: str, ip: str | None = None,
                          hostname: str | None = None, owner: str = "lab",
                          extra_hosts: dict[str, str] | None = None) -> bool:
    """Start a systemd container unless it already runs; returns True when something changed. ``extra_hosts``
    ({name: address}) go into its /etc/hosts (docker run --add-host)."""
    state = container_state(name)
    if state == "running":
        return False
    if state is not None:
        docker("rm", "-f", name)
    args = ["run", "-d", "--name", name, "--hostname", hostname or name,
            "--label", f"{OWNER_LABEL}={owner}", "--network", network]
    if hostname:
        args += ["--network-alias", hostname]
    if ip:
        args += ["--ip", ip]
    for host, address in sorted((extra_hosts or {}).items()):
        args += ["--add-host", f"{host}:{address}"]
    docker(*args, *SYSTEMD_RUN_ARGS, image, SYSTEMD_COMMAND)
    wait_for_systemd(name)
    return True


def connect_network(container: str, network: str, ip: str | None = None) -> bool:
    """Attach a running container to one more Docker network (at ``ip``) unless it is; True when attached.

    The container's interfaces follow the order of attachment: the network it was started on is eth0,
    the first one connected here eth1, and so on.
    """
    res = docker("container", "inspect", "--format", "{{json .NetworkSettings.Networks}}", container)
    if network in (json.loads(res.stdout.strip() or "null") or {}):
        return False
    docker("network", "connect", *(["--ip", ip] if ip else []), network, container)
    return True


def remove_owned(owner: str) -> list[str]:
    """Remove every container, network and volume labelled with ``owner``; returns what went."""
    gone = []
    label = f"label={OWNER_LABEL}={owner}"
    for kind, ls in (("container", ["ps", "-aq"]), ("network", ["network", "ls", "-q"]),
                     ("volume", ["volume", "ls", "-q"])):
        ids = docker(*ls, "--filter", label).stdout.split()
        if not ids:
            continue
        if kind == "container":
            docker("rm", "-f", "-v", *ids)
        else:
            docker(kind, "rm", *ids)
        gone += [f"{kind} {i[:12]}" for i in ids]
    return gone


def wait_for_systemd(name: str, timeout: float = 90.0) -> None:
    """Wait until systemd in the container has finished booting (running or degraded)."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        res = docker("exec", name, "systemctl", "is-system-running", check=False)
        state = res.stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(1)
    raise SystemExit(f"systemd in {name} did not finish booting within {timeout:.0f}s (state: {state!r})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rampart-images", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("docker", help="make sure a Docker daemon answers")
    images = sub.add_parser("images", help="build (or reuse) the base images")
    images.add_argument("platforms", nargs="*", choices=[*PLATFORMS, []], default=None)
    args = parser.parse_args(argv)
    if args.cmd == "docker":
        ensure_docker()
    else:
        for name, image in ensure_images(args.platforms or None).items():
            print(f"{name}: {image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
