"""The pki role's variables checked as a whole, before anything runs (roles/pki/tasks/assert.yml).

The cross-field rules the argument spec cannot express, each problem naming the variable the operator wrote.
:func:`issue`, :func:`ensure_ca` and :func:`update_crl` enforce the same rules again on what they are given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.rampart.mqtt.plugins.module_utils.addresses import is_ip_address
from ansible_collections.rampart.mqtt.plugins.module_utils.pki.names import is_valid_dns_name, is_valid_name
from ansible_collections.rampart.mqtt.plugins.module_utils.values import as_bool, as_int, git_checkout_of, json_text

_NAME_RULE = "1-64 characters from A-Z a-z 0-9 . _ -"


def problems(s: Mapping[str, Any]) -> list[str]:
    """Every problem in the run's CA settings and certificate lists (the same for every host of a run)."""
    out = custody_problems(str(s.get("pki_dir", "")), str(s.get("pki_ca_key_passphrase") or ""),
                           as_bool(s.get("pki_disposable")))
    out += _lifetime_problems(s)
    out += _authority_problems(s)
    clients = list(s.get("pki_client_certificates") or [])
    bad = [name for name in clients if not is_valid_name(name)]
    if bad:
        out.append(f"pki_client_certificates contains invalid names {json_text(bad)}; use {_NAME_RULE}, starting "
                   "with a letter or digit (each name becomes a folder).")
    if len(set(map(str, clients))) != len(clients):
        out.append(f"pki_client_certificates lists a name more than once ({json_text(clients)}); remove the "
                   "duplicates.")
    out += _retirement_problems(s, clients)
    bad = [name for name in s.get("pki_revoked_clients") or [] if not is_valid_name(name)]
    if bad:
        out.append(f"pki_revoked_clients contains invalid names {json_text(bad)}; list client certificate names "
                   "(folders under clients/ in pki_dir).")
    servers = list(s.get("pki_server_certificates") or [])
    for i, cert in enumerate(servers):
        dns, ips = list(cert.get("dns_names") or []), list(cert.get("ip_addresses") or [])
        if (not is_valid_name(cert.get("name")) or not all(map(is_valid_dns_name, dns))
                or not all(map(is_ip_address, ips)) or not dns + ips):
            out.append(f"pki_server_certificates[{i}] ({json_text(cert.get('name'))}): the name must be {_NAME_RULE} "
                       "(it becomes a folder), dns_names must hold DNS names and ip_addresses IP addresses, at least "
                       f"one in all; got dns_names {json_text(dns)}, ip_addresses {json_text(ips)}.")
    names = [cert.get("name") for cert in servers]
    if len(set(map(str, names))) != len(names):
        out.append(f"pki_server_certificates lists a name more than once ({json_text(names)}); two certificates with "
                   "one name would overwrite each other.")
    return out


# The folders of a hierarchy's layout (common.Layout), which an authority's folder must not shadow.
_LAYOUT_FOLDERS = ("ca", "servers", "clients", "retired-clients")
_AUTHORITY_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


def _authority_problems(s: Mapping[str, Any]) -> list[str]:
    """pki_authority names a folder under pki_dir and goes into the root's CN (review M4)."""
    authority, ca_name = s.get("pki_authority") or "", s.get("pki_ca_common_name")
    if not isinstance(authority, str) or (authority and (not _AUTHORITY_RE.fullmatch(authority)
                                                         or authority in _LAYOUT_FOLDERS)):
        return [f"pki_authority must be empty or 1-32 characters from a-z 0-9 - (a folder under pki_dir), and not "
                f"one of {json_text(list(_LAYOUT_FOLDERS))}; got {json_text(authority)}."]
    if not isinstance(ca_name, str) or not ca_name.strip():
        return [f"pki_ca_common_name must be 1-64 characters (X.509 limit), got {json_text(ca_name)}."]
    full = f"{ca_name} ({authority})" if authority else ca_name
    if len(full) > 64:
        return [f"pki_ca_common_name must be 1-64 characters (X.509 limit) with the authority's suffix: "
                f"{json_text(full)} is {len(full)}."]
    return []


def _retirement_problems(s: Mapping[str, Any], clients: list[Any]) -> list[str]:
    """Review M3: with retirement on, the inventory's list must name every client this run issues (a client missing
    there would be issued, then retired in the same run)."""
    if not as_bool(s.get("pki_retire_unlisted_clients")):
        return []
    known = list(s.get("pki_inventory_clients") or [])
    bad = [name for name in known if not is_valid_name(name)]
    if bad:
        return [f"pki_inventory_clients contains invalid names {json_text(bad)}; use {_NAME_RULE}."]
    listed = set(known)
    missing = [name for name in dict.fromkeys(clients) if is_valid_name(name) and name not in listed]
    if missing:
        return [f"pki_inventory_clients does not name {json_text(missing)} from pki_client_certificates: with "
                "pki_retire_unlisted_clients on, every client folder it does not name is revoked and retired; list "
                "every client certificate of the deployment there, or set pki_retire_unlisted_clients: false."]
    return []


def custody_problems(pki_dir: str, passphrase: str, disposable: bool) -> list[str]:
    """Where and how the CA key may be kept (review M5), each problem naming the variable. ``disposable``
    (pki_disposable: true) marks a throw-away test CA, such as the lab's and Molecule's, which may be unencrypted
    and live in the checkout's git-ignored state."""
    out: list[str] = []
    if not os.path.isabs(str(pki_dir)):
        out.append(f"pki_dir ({pki_dir!r}) is relative: the CA would depend on the directory ansible-playbook "
                   "runs from; give an absolute path outside any git checkout.")
        return out
    if disposable:
        return out
    if not passphrase:
        out.append("pki_ca_key_passphrase is empty, so the CA keys would be stored unencrypted; set it from the "
                   "vault (pki_disposable: true only for a throw-away test CA such as the lab's).")
    checkout = git_checkout_of(pki_dir)
    if checkout is not None:
        out.append(f"pki_dir ({pki_dir}) is inside the git checkout {checkout}: one 'git add -A' would commit "
                   "the CA key; move it outside.")
    return out


def _lifetime_problems(s: Mapping[str, Any]) -> list[str]:
    cert_days, renew, ca_days = (as_int(s.get(k)) for k in ("pki_cert_valid_days", "pki_renew_before_days",
                                                             "pki_ca_valid_days"))
    out = []
    if not (cert_days > 0 and 0 <= renew < cert_days and ca_days > cert_days):
        out.append(f"pki_renew_before_days ({s.get('pki_renew_before_days')}) must be >= 0 and below "
                   f"pki_cert_valid_days ({s.get('pki_cert_valid_days')}), which must be > 0 and below "
                   f"pki_ca_valid_days ({s.get('pki_ca_valid_days')}); otherwise every run re-issues every "
                   "certificate.")
    inter_days, generation, overlap = (as_int(s.get(k)) for k in (
        "pki_intermediate_valid_days", "pki_intermediate_generation", "pki_intermediate_overlap_days"))
    if not (cert_days < inter_days <= ca_days and generation >= 1 and overlap >= 0):
        out.append(f"pki_intermediate_valid_days ({s.get('pki_intermediate_valid_days')}) must lie above "
                   f"pki_cert_valid_days ({s.get('pki_cert_valid_days')}) and at most pki_ca_valid_days "
                   f"({s.get('pki_ca_valid_days')}); pki_intermediate_generation "
                   f"({s.get('pki_intermediate_generation')}) must be >= 1 and pki_intermediate_overlap_days "
                   f"({s.get('pki_intermediate_overlap_days')}) >= 0.")
    crl_renew, crl_days = as_int(s.get("pki_crl_renew_before_days")), as_int(s.get("pki_crl_valid_days"))
    if not 0 <= crl_renew < crl_days:
        out.append(f"pki_crl_renew_before_days ({s.get('pki_crl_renew_before_days')}) must be >= 0 and below "
                   f"pki_crl_valid_days ({s.get('pki_crl_valid_days')}); otherwise every run re-signs the CRL.")
    return out


def server_problems(host: str, s: Mapping[str, Any]) -> list[str]:
    """This host's own server certificate settings (pki_server_certificate, pki_server_dns_names,
    pki_server_ip_addresses); nothing when pki_server_certificate is false."""
    if not as_bool(s.get("pki_server_certificate")):
        return []
    out = []
    if not is_valid_name(host):
        out.append(f"inventory_hostname {json_text(host)} names the server certificate and its folder; use "
                   f"{_NAME_RULE}, or set pki_server_certificate: false for this host.")
    dns, ips = list(s.get("pki_server_dns_names") or []), list(s.get("pki_server_ip_addresses") or [])
    bad_dns = [d for d in dns if not is_valid_dns_name(d)]
    bad_ips = [i for i in ips if not is_ip_address(i)]
    if bad_dns or bad_ips or not dns + ips:
        out.append(f"{host}: pki_server_dns_names must hold DNS names (not IP addresses) and pki_server_ip_addresses "
                   f"must hold IP addresses, at least one in all; invalid DNS names: {json_text(bad_dns)}, invalid "
                   f"IP addresses: {json_text(bad_ips)}.")
    return out
