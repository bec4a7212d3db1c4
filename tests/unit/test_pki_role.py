"""The pki role end to end through ansible-playbook, plus its interface files agreeing with each other."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from rampart import REPO_ROOT, pki

ROLE = REPO_ROOT / "roles" / "pki"
ANSIBLE_PLAYBOOK = Path(sys.prefix) / "bin" / "ansible-playbook"
RECAP_RE = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

# broker1 is local; "gone" points at TEST-NET-1 over SSH and is never contacted: the role's
# actions run in the controller process, so it still gets its certificate.
INVENTORY = {
    "all": {
        "hosts": {
            "broker1": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "pki_server_certificate": True,
                "pki_server_ip_addresses": ["192.0.2.10"],
            },
            "gone": {
                "ansible_host": "192.0.2.99",
                "ansible_connection": "ssh",
                "ansible_ssh_common_args": "-o ConnectTimeout=1",
                "pki_server_certificate": True,
            },
        }
    }
}


def run_role(tmp_path: Path, role_vars: dict, *args: str, inventory: dict = INVENTORY) -> tuple[int, str, dict]:
    """Apply the pki role; return (rc, output, {host: (ok, changed, unreachable, failed)})."""
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\ninject_facts_as_vars = False\nretry_files_enabled = False\n"
        "stdout_callback = ansible.builtin.default\n"
    )
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    play = [{"name": "Apply pki", "hosts": "all", "gather_facts": False,
             "roles": [{"role": "pki", "vars": role_vars}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    env = {
        "PATH": f"{ANSIBLE_PLAYBOOK.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(REPO_ROOT / "roles"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / ".ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    proc = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml"), *args],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    out = proc.stdout + proc.stderr
    recap = {h: tuple(map(int, nums)) for h, *nums in RECAP_RE.findall(out)}
    return proc.returncode, out, recap


def changed(recap: dict) -> int:
    return sum(v[1] for v in recap.values())


def test_role_converges_then_is_idempotent_and_check_clean(tmp_path: Path) -> None:
    pki_dir = tmp_path / "pki"
    role_vars = {"pki_dir": str(pki_dir), "pki_client_certificates": ["alice", "bob"]}

    rc, out, recap = run_role(tmp_path, role_vars)
    assert rc == 0, out
    assert recap["broker1"][1] == 3 and recap["gone"][1] == 1, out  # CA + server + clients; server
    assert recap["gone"][2] == 0, "the unreachable host must never be contacted"
    ca = x509.load_pem_x509_certificate((pki_dir / "ca" / "ca.crt").read_bytes())
    for leaf in ("servers/broker1", "servers/gone", "clients/alice", "clients/bob"):
        x509.load_pem_x509_certificate((pki_dir / leaf / "cert.pem").read_bytes()).verify_directly_issued_by(ca)
    san = x509.load_pem_x509_certificate((pki_dir / "servers/broker1/cert.pem").read_bytes()).extensions
    san = san.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker1"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.10"]
    assert "PRIVATE KEY" not in out

    files = {p: p.stat().st_mtime_ns for p in pki_dir.rglob("*")}
    rc, out, recap = run_role(tmp_path, role_vars)
    assert rc == 0 and changed(recap) == 0, out
    rc, out, recap = run_role(tmp_path, role_vars, "--check", "--diff")
    assert rc == 0 and changed(recap) == 0, out
    assert {p: p.stat().st_mtime_ns for p in pki_dir.rglob("*")} == files

    # A new client in check mode: reported, not written.
    rc, out, recap = run_role(tmp_path, role_vars | {"pki_client_certificates": ["alice", "bob", "carol"]}, "--check")
    assert rc == 0 and recap["broker1"][1] == 1, out
    assert not (pki_dir / "clients" / "carol").exists()


def test_check_mode_on_fresh_dir_writes_nothing(tmp_path: Path) -> None:
    pki_dir = tmp_path / "pki"
    rc, out, recap = run_role(tmp_path, {"pki_dir": str(pki_dir), "pki_client_certificates": ["alice"]},
                              "--check", "--diff")
    assert rc == 0, out
    assert recap["broker1"][1] == 3 and recap["gone"][1] == 1, out
    assert not pki_dir.exists()


@pytest.mark.parametrize(
    ("role_vars", "variable"),
    [
        ({"pki_key_type": "rsa-1024"}, "pki_key_type"),
        ({"pki_server_ip_addresses": ["192.0.2.300"]}, "pki_server_ip_addresses"),
        ({"pki_server_dns_names": ["10.0.0.1"]}, "pki_server_dns_names"),
        ({"pki_client_certificates": ["ok", "../escape"]}, "pki_client_certificates"),
        ({"pki_client_certificates": ["dup", "dup"]}, "pki_client_certificates"),
        ({"pki_renew_before_days": 397}, "pki_renew_before_days"),
        ({"pki_dir": None}, "pki_dir"),
    ],
)
def test_bad_input_fails_naming_the_variable(tmp_path: Path, role_vars: dict, variable: str) -> None:
    pki_dir = tmp_path / "pki"
    role_vars = {"pki_dir": str(pki_dir)} | role_vars
    if role_vars["pki_dir"] is None:
        del role_vars["pki_dir"]
    rc, out, recap = run_role(tmp_path, role_vars)
    assert rc != 0 and recap["broker1"][3] == 1, out
    failure = "\n".join(line for line in out.splitlines() if line.startswith("fatal:"))
    assert variable in failure, out
    assert not pki_dir.exists(), "input is checked before anything is written"


# ------------------------------------------------------------------------------ interface files


def test_defaults_agree_with_argument_spec() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert all(name.startswith("pki_") for name in [*spec, *defaults])
    required = {name for name, opt in spec.items() if opt.get("required")}
    assert required == {"pki_dir"}
    assert set(defaults) == set(spec) - required
    for name, value in defaults.items():
        assert spec[name].get("default") == value, name
    assert spec["pki_key_type"]["choices"] == list(pki.KEY_TYPES)
    assert defaults["pki_key_type"] == pki.DEFAULT_KEY_TYPE


def test_every_default_has_a_comment_line() -> None:
    lines = (ROLE / "defaults" / "main.yml").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^pki_\w+:", line):
            assert lines[i - 1].startswith("# "), line


def _action_argument_spec() -> dict:
    tree = ast.parse((ROLE / "action_plugins" / "rampart_pki.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "ARGUMENT_SPEC")
    source = ast.get_source_segment((ROLE / "action_plugins" / "rampart_pki.py").read_text(), node.value)
    return eval(source, {"pki": pki})  # noqa: S307  (our own file, evaluated with only rampart.pki in scope)


def test_docs_stub_agrees_with_action_argument_spec() -> None:
    stub = ast.parse((ROLE / "library" / "rampart_pki.py").read_text())
    doc = next(n.value.value for n in stub.body
               if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "DOCUMENTATION")
    documented = yaml.safe_load(doc)["options"]

    def normalise(options: dict, sub_key: str) -> dict:
        out = {}
        for name, opt in options.items():
            keys = {k: opt[k] for k in ("type", "default", "choices", "required", "elements") if k in opt}
            keys.setdefault("required", False)
            if sub_key in opt:
                keys["options"] = normalise(opt[sub_key], sub_key)
            out[name] = keys
        return out

    assert normalise(documented, "suboptions") == normalise(_action_argument_spec(), "options")
