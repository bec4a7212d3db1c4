"""Cross-field validation of the mosquitto role's inventory, and the ACL and password files it renders.

One list, ``mosquitto_clients``, drives everything; this module is the single place that knows what a
valid entry is. Every error message names the variable path and says how to fix it, because it is
what an operator sees when a run stops before touching any host.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ansible_collections.rampart.mqtt.plugins.module_utils import passwords
from ansible_collections.rampart.mqtt.plugins.module_utils.addresses import is_unspecified_address
from ansible_collections.rampart.mqtt.plugins.module_utils.pki.names import NAME_RE, is_valid_dns_name, is_valid_name
from ansible_collections.rampart.mqtt.plugins.module_utils.values import json_text

AUTH_TYPES = ("password", "certificate", "certificate+password")
# The credentials each authentication needs: a line in the password file, a certificate from the devices CA.
# "certificate+password" needs both on the same CONNECT (README "Two factors").
USES_PASSWORD = frozenset({"password", "certificate+password"})
USES_CERTIFICATE = frozenset({"certificate", "certificate+password"})
ACL_ACCESS = ("read", "write", "readwrite", "deny")
TLS_VERSIONS = ("tlsv1.2", "tlsv1.3")
SAFE_LOG_TYPES = ("error", "warning", "notice", "information", "subscribe", "unsubscribe", "websockets", "none")
CLIENT_KEYS = frozenset({"name", "auth", "password", "admin", "broad", "publish", "subscribe", "deny", "revoked",
                         "description"})
EXPIRATION_RE = re.compile(r"^[1-9][0-9]*[hdwmy]$")

# Options that are listener-scoped in 2.0.x: written before the first `listener` line they silently open
# an extra listener on 0.0.0.0:1883 (mosquitto_facts.md 0.1), so they never belong in global options.
LISTENER_OPTIONS = frozenset({
    "listener", "bind_interface", "socket_domain", "protocol", "http_dir", "mount_point", "max_connections",
    "max_qos", "maximum_qos", "max_topic_alias", "use_username_as_clientid", "cafile", "capath", "certfile",
    "keyfile", "crlfile", "require_certificate", "use_identity_as_username", "use_subject_as_username",
    "tls_version", "ciphers", "ciphers_tls1.3", "dhparamfile", "tls_engine", "tls_engine_kpass_sha1",
    "tls_keyform", "psk_hint", "bind_address", "port",
})
# Global options the role's template already writes; a second copy is fatal ("Duplicate ... value").
OWNED_GLOBAL_OPTIONS = frozenset({
    "per_listener_settings", "allow_anonymous", "password_file", "acl_file", "persistence",
    "persistence_location", "autosave_interval", "log_dest", "log_type", "connection_messages",
    "log_timestamp", "max_packet_size", "max_inflight_messages", "max_queued_messages", "max_queued_bytes",
    "max_keepalive", "persistent_client_expiration", "include_dir", "user",
    "pid_file", "retain_expiry_interval",
})
# The escape hatches are allow-lists (security review M6, L14): tuning options that cannot weaken
# authentication, open a listener or a bridge, load a plugin or name a file. Everything else that the role
# does not write has no variable on purpose (allow_anonymous, capath, psk_*, plugin, connection, ...).
EXTRA_GLOBAL_OPTIONS = frozenset({
    "autosave_on_changes", "check_retain_source", "max_inflight_bytes", "memory_limit", "message_size_limit",
    "queue_qos0_messages", "retain_available", "set_tcp_nodelay", "sys_interval",
    "upgrade_outgoing_qos", "log_timestamp_format",
})
# Listener options the role's template writes for every listener.
OWNED_LISTENER_OPTIONS = frozenset({
    "listener", "certfile", "keyfile", "cafile", "crlfile", "require_certificate", "use_identity_as_username",
    "tls_version", "ciphers", "ciphers_tls1.3", "max_connections", "use_username_as_clientid", "max_qos",
    "maximum_qos",
})
EXTRA_LISTENER_OPTIONS = frozenset({"bind_interface", "socket_domain", "max_topic_alias"})
AEAD_TLS12 = re.compile(r"^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$")
TLS13_SUITES = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256",
                "TLS_AES_128_CCM_SHA256")


def has_control_characters(text: str) -> bool:
    """Any C0 control character or DEL: a line break in a name or topic would start a new line in a file."""
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def topic_filter_problem(topic: object) -> str | None:
    """Why ``topic`` is not a valid MQTT topic filter for an ACL line, or None."""
    if not isinstance(topic, str) or topic == "":
        return "must be a non-empty string"
    if topic != topic.strip():
        return "must not start or end with whitespace (the broker trims it)"
    if has_control_characters(topic):
        return "must not contain control characters (NUL, tab, line breaks, escapes)"
    if len(topic.encode()) > passwords.MAX_FIELD:
        return "is longer than 65535 bytes"
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return "uses '#' other than as the whole last level (e.g. 'a/#/b' or 'a#')"
        if "+" in level and level != "+":
            return "uses '+' other than as a whole level (e.g. 'a/b+')"
    return None


def broad_filter_problem(topic: str) -> str | None:
    """Why a filter is too broad for a non-admin client (matches everything or reaches $SYS)."""
    first = topic.split("/", 1)[0]
    if topic.startswith("$"):
        return f"reaches the broker's '$' topics ({topic!r})"
    if first in ("#", "+"):
        return f"starts with a wildcard level and so matches every application topic ({topic!r})"
    return None


def wildcard_outside_own_subtree(topic: str, name: str | None = None) -> bool:
    """Whether a filter has a wildcard level before any level naming the client (%u, %c or its name written out):
    'commands/#' and 'devices/+/set' reach other clients' topics, 'sensors/%u/#' stays in the client's own subtree."""
    for level in topic.split("/"):
        if level in ("%u", "%c") or (name and level == name):
            return False
        if level in ("#", "+"):
            return True
    return False


def _path(var: str, index: int, key: str | None = None) -> str:
    return f"{var}[{index}]" + (f".{key}" if key else "")


def validate(settings: dict[str, Any]) -> list[str]:
    """All problems in the mosquitto role's variables; an empty list means the inventory is valid."""
    errors: list[str] = []
    errors += _validate_listeners(settings)
    errors += _validate_clients(settings)
    errors += _validate_patterns(settings.get("mosquitto_acl_patterns") or [],
                                 bool(settings.get("mosquitto_use_username_as_clientid", True)))
    errors += _validate_tls(settings)
    errors += _validate_misc(settings)
    return errors



def wiring_problems(s: dict[str, Any]) -> list[str]:
    """What roles/wiring/vars/main.yml and the inventory give the role besides its own settings: the name clients
    verify the broker with, and the control-node files of its certificate."""
    errors = []
    name = s.get("mosquitto_tls_server_name")
    if not is_valid_dns_name(name):
        errors.append(f"mosquitto_tls_server_name {json_text(name)} must be a DNS name (not an IP address): it goes "
                      "into the server certificate, and clients verify the broker against it.")
    files = [s.get(f"mosquitto_tls_{k}_src") for k in ("ca", "cert", "key")]
    if not all(files):
        errors.append("mosquitto_tls_ca_src, mosquitto_tls_cert_src and mosquitto_tls_key_src must name files on the "
                      "control node (roles/wiring/vars/main.yml sets them from the pki role's layout); got "
                      f"{json_text(files)}.")
    return errors


def certificate_client_names(clients: Any) -> list[str]:
    """The names of the clients that hold a certificate (auth certificate or certificate+password) in a
    ``mosquitto_clients`` list, in order. Entries that are not a mapping with a valid name are skipped: the list may
    be a broker's that this run (under --limit) did not validate."""
    if not isinstance(clients, list):
        return []
    return [c["name"] for c in clients
            if isinstance(c, dict) and c.get("auth") in USES_CERTIFICATE and is_valid_name(c.get("name"))]


def client_host_problems(names: list[Any], clients: list[dict[str, Any]]) -> list[str]:
    """A client host's mqtt_client_names: every name must be a client of the inventory (review L13: a typo left the
    host without its credentials, silently)."""
    known = {c.get("name") for c in clients if isinstance(c, dict)}
    unknown = [f"mqtt_client_names[{i}] ({json_text(name)})" for i, name in enumerate(names) if name not in known]
    if not unknown:
        return []
    return [f"{', '.join(unknown)}: no entry of mosquitto_clients has that name; add the client to mosquitto_clients "
            "or correct the name (a typo would leave the host without its credentials, silently)."]

def _validate_listeners(s: dict[str, Any]) -> list[str]:
    errors = []
    addresses = s.get("mosquitto_bind_addresses") or []
    if not addresses:
        errors.append("mosquitto_bind_addresses is empty; set it to the address(es) the broker may listen on "
                      "(the segment address), e.g. ['10.20.0.10'].")
    for i, addr in enumerate(addresses):
        try:
            ip = ipaddress.ip_address(str(addr))
        except ValueError:
            errors.append(f"{_path('mosquitto_bind_addresses', i)} is {addr!r}, not an IP address; "
                          "give a literal address such as '10.20.0.10'.")
            continue
        if is_unspecified_address(ip):
            errors.append(f"{_path('mosquitto_bind_addresses', i)} is {addr!r}, which listens on every interface; "
                          "bind to the segment address instead.")
    if len(set(map(str, addresses))) != len(addresses):
        errors.append("mosquitto_bind_addresses lists an address twice; list each once.")
    listeners = s.get("mosquitto_listeners") or []
    if not listeners:
        errors.append("mosquitto_listeners is empty; the broker needs at least one TLS listener.")
    names, ports = set(), set()
    local_port = s.get("mosquitto_local_listener_port")
    for i, lst in enumerate(listeners):
        name, port = lst.get("name"), lst.get("port")
        if name in names:
            errors.append(f"{_path('mosquitto_listeners', i, 'name')} {name!r} is used twice; names must be unique.")
        names.add(name)
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            errors.append(f"{_path('mosquitto_listeners', i, 'port')} is {port!r}; use a port between 1 and 65535.")
        elif port in ports:
            errors.append(f"{_path('mosquitto_listeners', i, 'port')} {port} is used by another listener; "
                          "give each listener its own port.")
        elif s.get("mosquitto_local_listener") and port == local_port:
            errors.append(f"{_path('mosquitto_listeners', i, 'port')} {port} clashes with "
                          "mosquitto_local_listener_port; pick another port.")
        ports.add(port)
        if lst.get("authentication") not in AUTH_TYPES:
            errors.append(f"{_path('mosquitto_listeners', i, 'authentication')} is {lst.get('authentication')!r}; "
                          f"use one of {', '.join(AUTH_TYPES)}.")
        errors += _validate_raw_options(lst.get("extra_options") or [], _path("mosquitto_listeners", i,
                                                                             "extra_options"), scope="listener")
    if s.get("mosquitto_local_listener"):
        lp = local_port
        if not isinstance(lp, int) or isinstance(lp, bool) or not 1 <= lp <= 65535:
            errors.append(f"mosquitto_local_listener_port is {lp!r}; use a port between 1 and 65535.")
    return errors


def _validate_raw_options(lines: list, var: str, scope: str) -> list[str]:
    errors = []
    for j, line in enumerate(lines):
        where = f"{var}[{j}]"
        if not isinstance(line, str) or not line.strip():
            errors.append(f"{where} must be a non-empty 'option value' string.")
            continue
        if "\t" in line or "\n" in line or "\r" in line:
            errors.append(f"{where} contains a tab or line break; mosquitto.conf separates with single spaces.")
            continue
        if line.lstrip().startswith("#"):
            errors.append(f"{where} is a comment; drop it (raw options are config lines).")
            continue
        key = line.split()[0]
        if scope == "global" and key in LISTENER_OPTIONS:
            errors.append(f"{where} sets listener-scoped '{key}' globally, which would open a stray listener on "
                          "0.0.0.0:1883; put it in mosquitto_listeners[].extra_options instead.")
        elif scope == "global" and key in OWNED_GLOBAL_OPTIONS:
            errors.append(f"{where} sets '{key}', which the role already writes (a duplicate stops the broker); "
                          f"use the role variable for '{key}' instead.")
        elif scope == "listener" and key in OWNED_LISTENER_OPTIONS:
            errors.append(f"{where} sets '{key}', which the role already writes for every listener; "
                          "use the role variable instead.")
        elif key not in (EXTRA_GLOBAL_OPTIONS if scope == "global" else EXTRA_LISTENER_OPTIONS):
            allowed = sorted(EXTRA_GLOBAL_OPTIONS if scope == "global" else EXTRA_LISTENER_OPTIONS)
            errors.append(f"{where} sets '{key}', which is not an option this escape hatch lets through: options "
                          "that touch authentication, listeners, bridges, plugins or files are refused, and "
                          f"unknown ones too. Allowed here: {', '.join(allowed)}.")
    return errors


def _validate_clients(s: dict[str, Any]) -> list[str]:
    errors = []
    listeners = s.get("mosquitto_listeners") or []
    auths_served = {lst.get("authentication") for lst in listeners}
    clientid_is_username = bool(s.get("mosquitto_use_username_as_clientid", True))
    seen: dict[str, int] = {}
    for i, c in enumerate(s.get("mosquitto_clients") or []):
        if not isinstance(c, dict):
            errors.append(f"{_path('mosquitto_clients', i)} must be a mapping with at least 'name'.")
            continue
        errors += _client_name_errors(i, c.get("name"), seen)
        errors += _client_auth_errors(i, c, auths_served, _min_length(s))
        errors += _one_factor_errors(i, c, listeners)
        admin = c.get("admin", False)
        for key in ("admin", "broad"):
            if not isinstance(c.get(key, False), bool):
                errors.append(f"{_path('mosquitto_clients', i, key)} must be true or false.")
        if not isinstance(c.get("description", ""), str):
            errors.append(f"{_path('mosquitto_clients', i, 'description')} must be text.")
        for key in ("publish", "subscribe", "deny"):
            errors += _client_topic_errors(i, c, key, admin is True, clientid_is_username)
        errors += _client_revoked_errors(i, c)
        unknown = set(c) - CLIENT_KEYS
        if unknown:
            errors.append(f"{_path('mosquitto_clients', i)} has unknown key(s) {sorted(unknown)}; allowed: "
                          f"{', '.join(sorted(CLIENT_KEYS))}.")
    return errors


def _client_name_errors(i: int, name: Any, seen: dict[str, int]) -> list[str]:
    """mosquitto_clients[i].name: valid and unique (``seen`` maps the names so far to their index)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        return [f"{_path('mosquitto_clients', i, 'name')} is {name!r}; use 1-64 characters from "
                "A-Z a-z 0-9 . _ - starting with a letter or digit (it is the username, the client id "
                "and the certificate CN, so ':', '+', '#', '/' and spaces are not allowed)."]
    if name in seen:
        return [f"{_path('mosquitto_clients', i, 'name')} {name!r} duplicates mosquitto_clients"
                f"[{seen[name]}]; every device needs its own unique name."]
    seen[name] = i
    return []


def _client_auth_errors(i: int, c: dict[str, Any], auths_served: set, min_length: int) -> list[str]:
    """mosquitto_clients[i].auth is served by a listener, and the password fits the auth type."""
    errors = []
    name, auth, password = c.get("name"), c.get("auth", "password"), c.get("password")
    if auth not in AUTH_TYPES:
        errors.append(f"{_path('mosquitto_clients', i, 'auth')} is {auth!r}; use one of {', '.join(AUTH_TYPES)}.")
    elif auth not in auths_served:
        errors.append(f"{_path('mosquitto_clients', i, 'auth')} is {auth!r} but no entry in mosquitto_listeners "
                      f"has authentication: {auth}; add such a listener or change the client.")
    if auth in USES_PASSWORD:
        if not isinstance(password, str) or password == "":
            vault_ref = f"{{{{ vault_mosquitto_passwords['{name}'] }}}}"
            errors.append(f"{_path('mosquitto_clients', i, 'password')} is missing or empty for {auth} client "
                          f"{name!r}; set it from the vault (e.g. \"{vault_ref}\").")
        elif len(password) < min_length:
            # Never the password itself, nor its length: validation messages reach CI logs.
            errors.append(f"{_path('mosquitto_clients', i, 'password')} of {auth} client {name!r} is shorter than "
                          f"mosquitto_password_min_length ({min_length}); the stored hash (PBKDF2-SHA512, "
                          "mosquitto_password_iterations rounds) is cheap to guess against, so give it a long random "
                          "password, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))'.")
        elif "\0" in password:
            errors.append(f"{_path('mosquitto_clients', i, 'password')} contains NUL; the broker would "
                          "truncate it there.")
    elif auth == "certificate" and password not in (None, ""):
        errors.append(f"{_path('mosquitto_clients', i, 'password')} is set for certificate client {name!r}; "
                      "the certificate listener ignores passwords, so remove it.")
    return errors


def _one_factor_errors(i: int, c: dict[str, Any], listeners: list) -> list[str]:
    """A certificate+password client on a broker that also has a one-factor listener would get in there with one
    factor: Mosquitto 2.0 keeps one password file for every listener, and a certificate listener takes the
    certificate's name as the username without a password."""
    if c.get("auth") != "certificate+password":
        return []
    weaker = [f"{_path('mosquitto_listeners', j)} ({lst.get('name')!r}, authentication: {lst.get('authentication')})"
              for j, lst in enumerate(listeners) if isinstance(lst, dict)
              and lst.get("authentication") in ("password", "certificate")]
    if not weaker:
        return []
    return [f"{_path('mosquitto_clients', i, 'auth')} is 'certificate+password' for {c.get('name')!r}, but "
            f"{' and '.join(weaker)} would admit it with one factor (Mosquitto 2.0 checks the password file and the "
            "certificate per listener, not per client). Serve two-factor clients from brokers whose listeners all "
            "have authentication: certificate+password, or give the client auth: certificate or password."]


def _client_topic_errors(i: int, c: dict[str, Any], key: str, admin: bool, clientid_is_username: bool) -> list[str]:
    """mosquitto_clients[i].<key> (publish, subscribe or deny): valid filters, broad ones for admins only."""
    errors = []
    name, topics = c.get("name"), c.get(key) or []
    if not isinstance(topics, list):
        return [f"{_path('mosquitto_clients', i, key)} must be a list of topic filters."]
    for j, topic in enumerate(topics):
        where = f"{_path('mosquitto_clients', i, key)}[{j}]"
        problem = topic_filter_problem(topic)
        if problem:
            errors.append(f"{where} {topic!r} {problem}; write a valid MQTT topic filter.")
            continue
        if "%c" in topic and not clientid_is_username:
            errors.append(f"{where} uses %c, which the role can only resolve when "
                          "mosquitto_use_username_as_clientid is true; use %u or a literal topic.")
        broad = broad_filter_problem(topic)
        if broad and key != "deny" and not admin:
            errors.append(f"{_path('mosquitto_clients', i, key)} contains {topic!r}: it {broad}; only "
                          f"clients with admin: true may use '#', '+/...' or '$SYS' filters. Narrow the "
                          f"filter (e.g. 'sensors/{name}/#') or mark {name!r} admin: true.")
        elif (key == "publish" and not admin and c.get("broad") is not True
              and wildcard_outside_own_subtree(topic, name)):
            # Review L2: 'commands/#' lets one device write every device's commands.
            errors.append(f"{where} {topic!r} publishes through a wildcard outside the client's own %u subtree, so "
                          f"{name!r} could write other clients' topics (e.g. every device's commands). Narrow it "
                          f"(e.g. 'commands/%u/#') or, if {name!r} must fan out, set broad: true on it.")
    return errors


def _client_revoked_errors(i: int, c: dict[str, Any]) -> list[str]:
    revoked = c.get("revoked", False)
    if not isinstance(revoked, bool):
        return [f"{_path('mosquitto_clients', i, 'revoked')} must be true or false."]
    if revoked and c.get("auth", "password") not in USES_CERTIFICATE:
        return [f"{_path('mosquitto_clients', i, 'revoked')} is set for password client {c.get('name')!r}; only "
                "certificates are revoked. Remove the client (or change its password) instead."]
    return []


def _validate_patterns(patterns: list, clientid_is_username: bool = True) -> list[str]:
    errors = []
    for i, p in enumerate(patterns):
        where = _path("mosquitto_acl_patterns", i)
        if not isinstance(p, dict):
            errors.append(f"{where} must be a mapping with 'access' and 'topic'.")
            continue
        if p.get("access") not in ACL_ACCESS:
            errors.append(f"{where}.access is {p.get('access')!r}; use one of {', '.join(ACL_ACCESS)}.")
        topic = p.get("topic")
        problem = topic_filter_problem(topic)
        if problem:
            errors.append(f"{where}.topic {topic!r} {problem}.")
            continue
        if "%u" not in topic and "%c" not in topic:
            errors.append(f"{where}.topic {topic!r} has neither %u nor %c; patterns apply to every client, so a "
                          "literal topic belongs in a client's publish/subscribe list.")
        if "%c" in topic and not clientid_is_username and p.get("access") != "deny":
            # Review L1: with free client ids, any authenticated client connects as client id <victim>.
            errors.append(f"{where}.topic {topic!r} uses %c while mosquitto_use_username_as_clientid is false: any "
                          "client may choose another's client id and get its topics; use %u.")
        broad = broad_filter_problem(topic)
        if broad and p.get("access") != "deny":
            errors.append(f"{where}.topic: it {broad}; patterns apply to every client, so they may not.")
    return errors


def _validate_tls(s: dict[str, Any]) -> list[str]:
    errors = []
    version = s.get("mosquitto_tls_version", "tlsv1.2")
    if version not in TLS_VERSIONS:
        errors.append(f"mosquitto_tls_version is {version!r}; the minimum may only be tlsv1.2 or tlsv1.3.")
    ciphers = s.get("mosquitto_tls_ciphers", "")
    for cipher in [c for c in str(ciphers).split(":") if c]:
        if not AEAD_TLS12.fullmatch(cipher):
            errors.append(f"mosquitto_tls_ciphers contains {cipher!r}; only ECDHE key exchange with AEAD "
                          "(AES-GCM, CHACHA20-POLY1305) is allowed, e.g. ECDHE-ECDSA-AES128-GCM-SHA256.")
    if not str(ciphers):
        errors.append("mosquitto_tls_ciphers is empty; list ECDHE+AEAD suites for TLS 1.2.")
    for suite in [c for c in str(s.get("mosquitto_tls_ciphersuites", "")).split(":") if c]:
        if suite not in TLS13_SUITES:
            errors.append(f"mosquitto_tls_ciphersuites contains {suite!r}; use TLS 1.3 suites from {TLS13_SUITES}.")
    return errors


def _int_between(s: dict[str, Any], var: str, low: int, high: int) -> list[str]:
    value = s.get(var)
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        return [f"{var} is {value!r}; use an integer from {low} to {high}."]
    return []


def _validate_misc(s: dict[str, Any]) -> list[str]:
    errors = []
    errors += _int_between(s, "mosquitto_max_packet_size", 20, 268435460)
    errors += _int_between(s, "mosquitto_max_inflight_messages", 1, 65535)
    errors += _int_between(s, "mosquitto_max_queued_messages", 1, 2**31 - 1)
    errors += _int_between(s, "mosquitto_max_queued_bytes", 0, 2**31 - 1)
    errors += _int_between(s, "mosquitto_max_keepalive", 10, 65535)
    errors += _int_between(s, "mosquitto_max_connections", 1, 1_000_000)
    errors += _int_between(s, "mosquitto_password_iterations", 1000, 1_000_000)
    errors += _int_between(s, "mosquitto_password_min_length", 12, 1024)
    errors += _int_between(s, "mosquitto_autosave_interval", 1, 86400)
    errors += _int_between(s, "mosquitto_max_qos", 0, 2)
    errors += _int_between(s, "mosquitto_retain_expiry_interval", 0, 2**31 - 1)
    if s.get("mosquitto_debian12_source") == "main" and (s.get("mosquitto_retain_expiry_interval") or 0) > 0:
        errors.append("mosquitto_retain_expiry_interval needs Mosquitto 2.0.21, and mosquitto_debian12_source: main "
                      "installs 2.0.11 on Debian 12, which refuses the option; use backports, or set "
                      "mosquitto_retain_expiry_interval: 0.")
    expiration = s.get("mosquitto_persistent_client_expiration")
    if expiration is not None and not EXPIRATION_RE.fullmatch(str(expiration)):
        errors.append(f"mosquitto_persistent_client_expiration is {expiration!r}; use a number followed by h, d, w, m "
                      "or y (e.g. '14d'); seconds are not accepted by 2.0 brokers.")
    for i, log_type in enumerate(s.get("mosquitto_log_types") or []):
        if log_type not in SAFE_LOG_TYPES:
            errors.append(f"mosquitto_log_types[{i}] is {log_type!r}; 'debug' and 'all' can log payload metadata "
                          f"and denied topics, so use only {', '.join(SAFE_LOG_TYPES)}.")
    errors += _validate_raw_options(s.get("mosquitto_extra_options") or [], "mosquitto_extra_options",
                                    scope="global")
    return errors


def expand(topic: str, name: str) -> str:
    """Resolve %u/%c in a client's own filter (client id == username when the role manages client ids)."""
    return topic.replace("%u", name).replace("%c", name)


def acl_lines(clients: list[dict], patterns: list[dict] | None = None) -> list[str]:
    """The ACL file body. Nothing precedes the first ``user`` line, so anonymous clients get nothing."""
    lines: list[str] = []
    # A revoked client gets no ACL section at all: even if its certificate were accepted, it could do nothing.
    for c in sorted((c for c in clients if not c.get("revoked", False)), key=lambda c: c["name"]):
        lines.append(f"user {c['name']}")
        for topic in c.get("deny") or []:
            lines.append(f"topic deny {expand(topic, c['name'])}")
        pub = [expand(t, c["name"]) for t in c.get("publish") or []]
        sub = [expand(t, c["name"]) for t in c.get("subscribe") or []]
        for topic in dict.fromkeys(pub + sub):
            access = "readwrite" if topic in pub and topic in sub else ("write" if topic in pub else "read")
            lines.append(f"topic {access} {topic}")
        lines.append("")
    for p in patterns or []:
        lines.append(f"pattern {p['access']} {p['topic']}")
    check_acl(lines, {c["name"] for c in clients if not c.get("revoked", False)})
    return lines


_ACL_LINE = re.compile(r"user [A-Za-z0-9][A-Za-z0-9._-]{0,63}|topic (deny|read|write|readwrite) \S.*"
                       r"|pattern (read|write|readwrite) \S.*")


def check_acl(lines: list[str], users_expected: set[str]) -> None:
    """Parse the rendered ACL back (defence in depth behind validation): every line is a user, topic or pattern
    line or empty, with no control character, each user has one section, and the sections are exactly the
    inventory's clients that are not revoked. Raises ValueError otherwise."""
    users: set[str] = set()
    for number, line in enumerate(lines, 1):
        if line == "":
            continue
        if has_control_characters(line) or not _ACL_LINE.fullmatch(line):
            raise ValueError(f"the rendered ACL's line {number} is not a user, topic or pattern line: {line!r}; "
                             "nothing was installed (a client name or topic carries a line break?)")
        if line.startswith("user "):
            if line in users:
                raise ValueError(f"the rendered ACL has two sections for {line!r}; nothing was installed")
            users.add(line)
    if {u.removeprefix("user ") for u in users} != users_expected:
        raise ValueError("the rendered ACL's user sections are not the inventory's clients; nothing was installed")


def password_users(clients: list[dict]) -> list[tuple[str, str]]:
    """(username, password) for every client that logs in with a password (auth password or certificate+password),
    in a stable order."""
    return sorted((c["name"], c["password"]) for c in clients if c.get("auth", "password") in USES_PASSWORD)


def _min_length(s: dict[str, Any]) -> int:
    value = s.get("mosquitto_password_min_length", 16)
    return value if isinstance(value, int) and not isinstance(value, bool) else 16
