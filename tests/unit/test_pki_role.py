"""The pki role end to end through ansible-playbook, plus its interface files agreeing with each other."""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import yaml
from ansible_collections.rampart.mqtt.plugins.module_utils import pki
from cryptography import x509

from rampart import REPO_ROOT
from rampart import results as playbook_results

COLLECTION = REPO_ROOT
ROLE = COLLECTION / "roles" / "pki"
PLUGINS = COLLECTION / "plugins"
ANSIBLE_PLAYBOOK = Path(sys.prefix) / "bin" / "ansible-playbook"

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


def start_role(tmp_path: Path, role_vars: dict, *args: str, inventory: dict = INVENTORY) -> subprocess.Popen:
    """Start ansible-playbook applying the pki role in tmp_path, with a minimal environment."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\ninject_facts_as_vars = False\nretry_files_enabled = False\n"
        "stdout_callback = ansible.builtin.default\n"
    )
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    # A scratch CA: unencrypted unless the test says otherwise (review M5 refuses that outside a disposable CA).
    role = {"role": "rampart.mqtt.pki", "vars": {"pki_disposable": True, **role_vars}}
    play = [{"name": "Apply pki", "hosts": "all", "gather_facts": False, "roles": [role]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    env = {
        "PATH": f"{ANSIBLE_PLAYBOOK.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".collections"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / ".ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    results_file = tmp_path / "results.jsonl"  # what the rampart.mqtt.results callback records, this run only
    results_file.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [str(ANSIBLE_PLAYBOOK), "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml"), *args],
        env=playbook_results.callback_env(env, results_file),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    proc.results_file = results_file
    return proc


def finish(proc: subprocess.Popen) -> tuple[int, str, dict]:
    """Wait; return (rc, output, {host: (ok, changed, unreachable, failed)}) from the results callback's stats."""
    out, _ = proc.communicate(timeout=120)
    run = playbook_results.PlaybookResult(proc.returncode, out, playbook_results.read(proc.results_file))
    recap = {h: (s.ok, s.changed, s.unreachable, s.failed) for h, s in run.stats.items()}
    return proc.returncode, out, recap


def run_role(tmp_path: Path, role_vars: dict, *args: str, inventory: dict = INVENTORY) -> tuple[int, str, dict]:
    return finish(start_role(tmp_path, role_vars, *args, inventory=inventory))


def changed(recap: dict) -> int:
    return sum(v[1] for v in recap.values())


def fatal_lines(out: str, host: str) -> str:
    return "\n".join(line for line in out.splitlines() if line.startswith(f"fatal: [{host}]"))


def test_role_converges_then_is_idempotent_and_check_clean(tmp_path: Path) -> None:
    pki_dir = tmp_path / "pki"
    role_vars = {"pki_dir": str(pki_dir), "pki_client_certificates": ["alice", "bob"]}

    rc, out, recap = run_role(tmp_path, role_vars)
    assert rc == 0, out
    assert recap["broker1"][1] == 4 and recap["gone"][1] == 1, out  # CA + CRL + server + clients; server
    assert recap["gone"][2] == 0, "the unreachable host must never be contacted"
    root = x509.load_pem_x509_certificate((pki_dir / "ca" / "ca.crt").read_bytes())
    ca = x509.load_pem_x509_certificate((pki_dir / "ca" / "intermediate.crt").read_bytes())
    ca.verify_directly_issued_by(root)
    for leaf in ("servers/broker1", "servers/gone", "clients/alice", "clients/bob"):
        x509.load_pem_x509_certificate((pki_dir / leaf / "cert.pem").read_bytes()).verify_directly_issued_by(ca)
    assert x509.load_pem_x509_crl((pki_dir / "ca" / "crl.pem").read_bytes()).issuer == ca.subject
    san = x509.load_pem_x509_certificate((pki_dir / "servers/broker1/cert.pem").read_bytes()).extensions
    san = san.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker1"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.10"]
    assert "PRIVATE KEY" not in out

    files = {p: p.stat().st_mtime_ns for p in pki_dir.rglob("*")}
    rc, out, recap = run_role(tmp_path, role_vars)
    assert rc == 0 and changed(recap) == 0, out
    assert {p: p.stat().st_mtime_ns for p in pki_dir.rglob("*")} == files

    # Check mode on the converged dir with one new client: only that task reports, nothing is written.
    rc, out, recap = run_role(
        tmp_path, role_vars | {"pki_client_certificates": ["alice", "bob", "carol"]}, "--check", "--diff"
    )
    assert rc == 0 and recap["broker1"][1] == 1 and recap["gone"][1] == 0, out
    assert "carol" in out
    assert {p: p.stat().st_mtime_ns for p in pki_dir.rglob("*")} == files


def test_check_mode_on_fresh_dir_writes_nothing(tmp_path: Path) -> None:
    pki_dir = tmp_path / "pki"
    rc, out, recap = run_role(
        tmp_path, {"pki_dir": str(pki_dir), "pki_client_certificates": ["alice"]}, "--check", "--diff"
    )
    assert rc == 0, out
    assert recap["broker1"][1] == 4 and recap["gone"][1] == 1, out
    assert "+ crl.pem: sign" in out
    assert not pki_dir.exists()


def test_revocation_through_the_role(tmp_path: Path) -> None:
    """Revoke one client with passphrase-protected CA keys and PKCS#12 bundles; then idempotent."""
    pki_dir = tmp_path / "pki"
    secrets = {"pki_ca_key_passphrase": "ca-secret-4711", "pki_pkcs12_passphrase": "p12-secret-0815"}
    role_vars = {"pki_dir": str(pki_dir), "pki_client_certificates": ["alice", "bob"]} | secrets
    one_host = {"all": {"hosts": {"broker1": INVENTORY["all"]["hosts"]["broker1"]}}}
    rc, out, _ = run_role(tmp_path, role_vars, inventory=one_host)
    assert rc == 0, out
    assert (pki_dir / "ca" / "intermediate.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY")
    assert (pki_dir / "clients" / "bob" / "bundle.p12").exists()
    bob = x509.load_pem_x509_certificate((pki_dir / "clients" / "bob" / "cert.pem").read_bytes())
    bob_files = {p.name: p.read_bytes() for p in (pki_dir / "clients" / "bob").iterdir()}

    revoke = role_vars | {"pki_revoked_clients": ["bob"]}
    files = {p: p.stat().st_mtime_ns for p in pki_dir.rglob("*")}
    rc, out, recap = run_role(tmp_path, revoke, "--check", "--diff", inventory=one_host)
    assert rc == 0 and recap["broker1"][1] == 1 and "- bob: revoke" in out, out
    assert {p: p.stat().st_mtime_ns for p in pki_dir.rglob("*")} == files

    rc, out, recap = run_role(tmp_path, revoke, "--diff", "-v", inventory=one_host)
    assert rc == 0 and recap["broker1"][1] == 1, out  # only the CRL task; bob is skipped, not re-issued
    crl = x509.load_pem_x509_crl((pki_dir / "ca" / "crl.pem").read_bytes())
    assert [r.serial_number for r in crl] == [bob.serial_number]
    assert {p.name: p.read_bytes() for p in (pki_dir / "clients" / "bob").iterdir()} == bob_files

    rc, out2, recap = run_role(tmp_path, revoke, "--diff", "-v", inventory=one_host)
    assert rc == 0 and changed(recap) == 0, out2
    for secret in secrets.values():
        assert secret not in out + out2


def test_a_client_dropped_from_the_list_is_revoked_and_its_folder_retired(tmp_path: Path) -> None:
    """Review M3 through the role: a client that leaves pki_client_certificates (the role's whole truth when used
    alone) has its certificate revoked and its folder moved to retired-clients/; check mode says so first."""
    pki_dir = tmp_path / "pki"
    one_host = {"all": {"hosts": {"broker1": INVENTORY["all"]["hosts"]["broker1"]}}}
    rc, out, _ = run_role(tmp_path, {"pki_dir": str(pki_dir), "pki_client_certificates": ["alice", "bob"]},
                          inventory=one_host)
    assert rc == 0, out
    bob = x509.load_pem_x509_certificate((pki_dir / "clients" / "bob" / "cert.pem").read_bytes())
    alice_only = {"pki_dir": str(pki_dir), "pki_client_certificates": ["alice"]}
    rc, out, recap = run_role(tmp_path, alice_only, "--check", "--diff", inventory=one_host)
    assert rc == 0 and "- bob: retire" in out and (pki_dir / "clients" / "bob").is_dir(), out
    rc, out, recap = run_role(tmp_path, alice_only, inventory=one_host)
    assert rc == 0 and recap["broker1"][1] == 1, out
    crl = x509.load_pem_x509_crl((pki_dir / "ca" / "crl.pem").read_bytes())
    assert [r.serial_number for r in crl] == [bob.serial_number]
    assert not (pki_dir / "clients" / "bob").exists()
    assert [p.name.split("-")[0] for p in (pki_dir / "retired-clients").iterdir()] == ["bob"]


def test_bad_input_fails_naming_the_variable(tmp_path: Path) -> None:
    """Per-host mistakes share one run (one host each); play-wide ones need a run each. In parallel."""
    pki_dir = tmp_path / "pki"
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    per_host = {
        "bad_key_type": ({"pki_dir": str(pki_dir), "pki_key_type": "rsa-1024"}, "pki_key_type"),
        "bad_ip": (
            {"pki_dir": str(pki_dir), "pki_server_certificate": True, "pki_server_ip_addresses": ["192.0.2.300"]},
            "pki_server_ip_addresses",
        ),
        "ip_as_dns": (
            {"pki_dir": str(pki_dir), "pki_server_certificate": True, "pki_server_dns_names": ["10.0.0.1"]},
            "pki_server_dns_names",
        ),
        "no_dir": ({}, "pki_dir"),
    }
    inventory = {"all": {"hosts": {h: local | hv for h, (hv, _) in per_host.items()}}}
    play_wide = {
        "bad_client": ({"pki_client_certificates": ["ok", "../escape"]}, "pki_client_certificates"),
        "dup_client": ({"pki_client_certificates": ["dup", "dup"]}, "pki_client_certificates"),
        "renew": ({"pki_renew_before_days": 397}, "pki_renew_before_days"),
    }
    one_host = {"all": {"hosts": {"broker1": local}}}
    procs = {"per_host": start_role(tmp_path / "per_host", {}, inventory=inventory)}
    for case, (role_vars, _) in play_wide.items():
        procs[case] = start_role(tmp_path / case, {"pki_dir": str(pki_dir)} | role_vars, inventory=one_host)
    results = {case: finish(proc) for case, proc in procs.items()}

    rc, out, recap = results["per_host"]
    assert rc != 0, out
    for host, (_, variable) in per_host.items():
        assert recap[host][3] == 1, f"{host} did not fail:\n{out}"
        assert variable in fatal_lines(out, host), f"{host}: {variable} not named:\n{out}"
    for case, (_, variable) in play_wide.items():
        rc, out, recap = results[case]
        assert rc != 0 and recap["broker1"][3] == 1, out
        assert variable in fatal_lines(out, "broker1"), f"{case}: {variable} not named:\n{out}"
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


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _action_argument_spec() -> dict:
    return _load("rampart_pki_action", PLUGINS / "action" / "pki.py").ARGUMENT_SPEC


def test_docs_stub_agrees_with_action_argument_spec() -> None:
    stub = ast.parse((PLUGINS / "modules" / "pki.py").read_text())
    doc = next(
        n.value.value
        for n in stub.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "DOCUMENTATION"
    )
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


# ------------------------------------------------------------------------------ the action plugin, in-process


def _run_action(args: dict, *, check: bool = False, diff: bool = False) -> tuple[dict, mock.MagicMock]:
    from ansible.playbook.play_context import PlayContext

    action = _load("rampart_pki_action", PLUGINS / "action" / "pki.py")
    task = mock.MagicMock(args=args, check_mode=check, diff=diff, async_val=0)
    connection = mock.MagicMock()
    plugin = action.ActionModule(
        task, connection, PlayContext(), loader=None, templar=mock.MagicMock(), shared_loader_obj=None
    )
    return plugin.run(task_vars={}), connection


def test_action_never_uses_the_connection_and_reports(tmp_path: Path) -> None:
    args = {"dir": str(tmp_path / "pki"), "certificates": [{"name": "alice", "profile": "client"}]}
    result, connection = _run_action(args, check=True, diff=True)
    assert result["changed"] and result["ca"]["created"] and result["issued"] == ["alice"]
    assert "+ alice: issue" in result["diff"][0]["prepared"]
    assert not (tmp_path / "pki").exists()
    result, connection = _run_action(args)
    assert result["changed"] and not result.get("failed")
    assert connection.mock_calls == [], "the action must not touch the target host"
    result, _ = _run_action(args)
    assert result["changed"] is False and result["unchanged"] == ["alice"]
    assert "diff" not in result and "warnings" not in result
    result, _ = _run_action(args | {"key_type": "ec-p384"})
    assert "ec-p384" in result["warnings"][0] and result["renewed"][0]["name"] == "alice"


def test_action_turns_value_errors_into_failures(tmp_path: Path) -> None:
    args = {
        "dir": str(tmp_path / "pki"),
        "certificates": [{"name": "x", "profile": "server", "ip_addresses": ["1.2.3"]}],
    }
    result, _ = _run_action(args)
    assert result["failed"] is True and "'1.2.3' is not a valid IP address" in result["msg"]
    assert result["changed"] is False
    result, _ = _run_action(
        {"dir": str(tmp_path / "other"), "ensure_ca": False, "certificates": [{"name": "a", "profile": "client"}]}
    )
    assert result["failed"] is True and "no CA" in result["msg"]


def test_action_revokes_refreshes_the_crl_and_skips_revoked(tmp_path: Path) -> None:
    pki_dir = tmp_path / "pki"
    clients = [{"name": "alice", "profile": "client"}, {"name": "bob", "profile": "client"}]
    result, _ = _run_action({"dir": str(pki_dir), "certificates": clients})
    assert result["crl"]["reason"] == "new" and result["ca"]["intermediate"]["generation"] == 1
    assert result["ca"]["root_key_present"] is True and result["revoked"] == []

    args = {"dir": str(pki_dir), "certificates": clients, "revoked": ["bob"]}
    result, _ = _run_action(args, check=True, diff=True)
    assert result["changed"] and result["crl"]["newly_revoked"] == ["bob"]
    assert "- bob: revoke" in result["diff"][0]["prepared"]
    result, _ = _run_action(args, diff=True)
    assert result["changed"] and result["revoked"] == ["bob"] and result["unchanged"] == ["alice"]
    assert result["crl"]["revoked"] == ["bob"] and result["crl"]["entries"] == 1
    assert "~ crl.pem: re-sign (revoked set changed (+1, -0))" in result["diff"][0]["prepared"]
    result, _ = _run_action(args)
    assert result["changed"] is False and "warnings" not in result

    # Rotation through the action, with check mode seeing the pending re-issues.
    rotate = args | {"intermediate_generation": 2}
    result, _ = _run_action(rotate, check=True, diff=True)
    assert result["ca"]["intermediate"]["rotated"] and [r["name"] for r in result["renewed"]] == ["alice"]
    assert "+ ca: issuing CA generation 2: rotated from generation 1 to 2" in result["diff"][0]["prepared"]
    result, _ = _run_action(rotate)
    assert [r["name"] for r in result["renewed"]] == ["alice"] and result["revoked"] == ["bob"]
    assert _run_action(rotate)[0]["changed"] is False


def test_an_unencrypted_ca_outside_a_disposable_one_is_refused_before_any_key(tmp_path: Path) -> None:
    """Review M5: without pki_disposable, an empty pki_ca_key_passphrase stops the role before it writes a key."""
    pki_dir = tmp_path / "pki"
    rc, out, _ = run_role(tmp_path, {"pki_dir": str(pki_dir), "pki_disposable": False})
    assert rc != 0
    assert "pki_ca_key_passphrase is empty, so the CA keys would be stored unencrypted" in out, out[-2000:]
    assert not pki_dir.exists()
