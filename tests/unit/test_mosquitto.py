"""rampart.mosquitto: validation rules and the ACL file."""

import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import describe, mosquitto

PW = "a-long-random-test-pw"
LISTENERS = [{"name": "password", "port": 8883, "authentication": "password"},
             {"name": "certificate", "port": 8884, "authentication": "certificate"}]


def settings(**over):
    base = {
        "mosquitto_bind_addresses": ["10.0.0.1"],
        "mosquitto_listeners": LISTENERS,
        "mosquitto_clients": [
            {"name": "sensor-01", "auth": "password", "password": PW, "publish": ["sensors/%u/#"]},
            {"name": "dev-1", "auth": "certificate", "subscribe": ["commands/%c/#"]},
            {"name": "admin", "password": PW, "admin": True, "subscribe": ["#", "$SYS/#"]},
        ],
        "mosquitto_tls_version": "tlsv1.2",
        "mosquitto_tls_ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305",
        "mosquitto_tls_ciphersuites": "TLS_AES_128_GCM_SHA256",
        "mosquitto_persistent_client_expiration": "14d",
    }
    base.update(over)
    return base


def test_valid_settings_have_no_problems():
    assert mosquitto.validate(settings()) == []


@pytest.mark.parametrize(("topic", "ok"), [
    ("a/b", True), ("a/+/c", True), ("a/#", True), ("#", True), ("+", True), ("$SYS/#", True),
    ("a/#/b", False), ("a#", False), ("a/b+", False), ("", False), (" a", False), ("a\tb", False),
])
def test_topic_filter_syntax(topic, ok):
    assert (mosquitto.topic_filter_problem(topic) is None) is ok


@pytest.mark.parametrize("topic", ["#", "+/x", "$SYS/#", "$SYS/broker/uptime", "+/#"])
def test_broad_filters_need_admin(topic):
    clients = [{"name": "c", "password": PW, "subscribe": [topic]}]
    problems = mosquitto.validate(settings(mosquitto_clients=clients))
    assert any("mosquitto_clients[0].subscribe contains" in p and "admin: true" in p for p in problems), problems
    clients[0]["admin"] = True
    assert mosquitto.validate(settings(mosquitto_clients=clients)) == []


@pytest.mark.parametrize("topic", ["commands/#", "devices/+/set", "sensors/+/#"])
def test_a_non_admin_publishing_through_a_wildcard_needs_broad(topic):
    """Review L2: the first-level rule let a device publish 'commands/#' (every device's commands)."""
    clients = [{"name": "c", "password": PW, "publish": [topic]}]
    problems = mosquitto.validate(settings(mosquitto_clients=clients))
    assert any("mosquitto_clients[0].publish[0]" in p and "outside the client's own %u subtree" in p
               for p in problems), problems
    clients[0]["broad"] = True
    assert mosquitto.validate(settings(mosquitto_clients=clients)) == []


@pytest.mark.parametrize(("key", "topic"), [("publish", "sensors/%u/#"), ("publish", "devices/%u/+/state"),
                                             ("publish", "sensors/c/#"),
                                             ("subscribe", "sensors/#"), ("subscribe", "devices/+/status")])
def test_own_subtree_wildcards_and_read_many_subscriptions_stay_allowed(key, topic):
    clients = [{"name": "c", "password": PW, key: [topic]}]
    assert mosquitto.validate(settings(mosquitto_clients=clients)) == []


def test_deny_may_be_broad_for_anyone():
    clients = [{"name": "c", "password": PW, "deny": ["$SYS/#"]}]
    assert mosquitto.validate(settings(mosquitto_clients=clients)) == []


def test_client_auth_needs_a_matching_listener():
    problems = mosquitto.validate(settings(mosquitto_listeners=LISTENERS[:1]))
    assert any("mosquitto_clients[1].auth" in p and "no entry in mosquitto_listeners" in p for p in problems)


def test_percent_c_needs_username_as_clientid():
    problems = mosquitto.validate(settings(mosquitto_use_username_as_clientid=False))
    assert any("mosquitto_clients[1].subscribe[0] uses %c" in p for p in problems)


def test_percent_c_in_a_pattern_needs_username_as_clientid_too():
    """Review L1: with free client ids, a %c pattern gives any client the topics of the id it chooses."""
    clients = [{"name": "sensor-01", "password": PW, "publish": ["sensors/%u/#"]}]
    patterns = [{"access": "readwrite", "topic": "devices/%c/#"}]
    problems = mosquitto.validate(settings(mosquitto_clients=clients, mosquitto_acl_patterns=patterns,
                                           mosquitto_use_username_as_clientid=False))
    assert any("mosquitto_acl_patterns[0].topic 'devices/%c/#' uses %c while mosquitto_use_username_as_clientid"
               in p for p in problems), problems
    assert mosquitto.validate(settings(mosquitto_clients=clients, mosquitto_acl_patterns=patterns)) == []
    deny = [{"access": "deny", "topic": "devices/%c/secrets"}]
    assert mosquitto.validate(settings(mosquitto_clients=clients, mosquitto_acl_patterns=deny,
                                       mosquitto_use_username_as_clientid=False)) == []


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "::0", "0::0", "0:0:0:0:0:0:0:0", "::ffff:0.0.0.0"])  # noqa: S104
def test_every_spelling_of_the_unspecified_address_is_refused(address):
    """Review L6: string comparison missed ::0, 0::0, the long form and the IPv4-mapped 0.0.0.0."""
    problems = mosquitto.validate(settings(mosquitto_bind_addresses=[address]))
    assert any("mosquitto_bind_addresses[0]" in p and "listens on every interface" in p for p in problems), problems


def test_acl_lines_default_deny_and_expansion():
    lines = mosquitto.acl_lines(settings()["mosquitto_clients"],
                                [{"access": "write", "topic": "devices/%u/status"}])
    assert lines[0].startswith("user ")  # nothing before the first user: anonymous gets nothing
    assert "topic write sensors/sensor-01/#" in lines
    assert "topic read commands/dev-1/#" in lines
    assert lines[-1] == "pattern write devices/%u/status"


def test_acl_readwrite_and_deny_first():
    lines = mosquitto.acl_lines([{"name": "c", "publish": ["t/a"], "subscribe": ["t/a", "t/b"], "deny": ["t/a/x"]}])
    assert lines[:4] == ["user c", "topic deny t/a/x", "topic readwrite t/a", "topic read t/b"]


def test_password_users_only_password_clients():
    assert [u for u, _ in mosquitto.password_users(settings()["mosquitto_clients"])] == ["admin", "sensor-01"]


def test_description_schema():
    brokers = [{"name": "b1", "container": "c-b1", "address": "10.0.0.1", "tls_server_name": "b1",
                "listeners": LISTENERS, "max_packet_size": 1000}]
    doc = describe.describe(brokers, settings()["mosquitto_clients"], "/ca.crt", "/clients", include_passwords=False)
    assert doc["brokers"][0]["port"] == 8883 and doc["brokers"][0]["listeners"] == {"certificate": 8884,
                                                                                 "password": 8883}
    by_name = {c["name"]: c for c in doc["clients"]}
    assert by_name["sensor-01"]["password"] is None
    assert "port" not in by_name["sensor-01"]
    assert by_name["dev-1"]["port"] == 8884
    assert by_name["dev-1"]["certfile"] == "/clients/dev-1/chain.pem"
    assert by_name["dev-1"]["subscribe"] == ["commands/dev-1/#"]
    assert all(c["expect"] == "allowed" for c in doc["clients"])
    assert by_name["dev-1"]["p12file"] is None and by_name["dev-1"]["p12_passphrase"] is None


def test_description_names_each_certificate_clients_pkcs12_bundle_when_bundles_are_made():
    brokers = [{"name": "b1", "container": "c-b1", "address": "10.0.0.1", "tls_server_name": "b1",
                "listeners": LISTENERS}]
    clients = settings()["mosquitto_clients"]
    shown = {c["name"]: c for c in describe.describe(brokers, clients, "/ca.crt", "/clients", include_passwords=True,
                                                     pkcs12_passphrase="p12-secret")["clients"]}
    assert (shown["dev-1"]["p12file"], shown["dev-1"]["p12_passphrase"]) == ("/clients/dev-1/bundle.p12", "p12-secret")
    assert (shown["sensor-01"]["p12file"], shown["sensor-01"]["p12_passphrase"]) == (None, None)
    hidden = {c["name"]: c for c in describe.describe(brokers, clients, "/ca.crt", "/clients",
                                                      pkcs12_passphrase="p12-secret")["clients"]}
    assert (hidden["dev-1"]["p12file"], hidden["dev-1"]["p12_passphrase"]) == ("/clients/dev-1/bundle.p12", None)


# Two factors: a listener that requires a certificate from the devices CA and the password (guides' recommendation).
TWO_FACTOR = [{"name": "two-factor", "port": 8885, "authentication": "certificate+password"}]
TWO_FACTOR_CLIENT = {"name": "gw-01", "auth": "certificate+password", "password": PW, "publish": ["gw/%u/#"]}


def test_a_two_factor_client_gets_a_certificate_a_password_line_and_both_in_the_description():
    clients = [TWO_FACTOR_CLIENT, {**TWO_FACTOR_CLIENT, "name": "gw-old", "revoked": True}]
    assert mosquitto.validate(settings(mosquitto_listeners=TWO_FACTOR, mosquitto_clients=clients)) == []
    assert mosquitto.certificate_client_names(clients) == ["gw-01", "gw-old"]
    assert [u for u, _ in mosquitto.password_users(clients)] == ["gw-01", "gw-old"]
    brokers = [{"name": "b1", "container": "c-b1", "address": "10.0.0.1", "tls_server_name": "b1",
                "listeners": TWO_FACTOR}]
    shown = describe.describe(brokers, clients, "/ca.crt", "/clients", include_passwords=True)
    gw = shown["clients"][0]
    assert (gw["auth"], gw["password"], gw["certfile"]) == ("certificate+password", PW, "/clients/gw-01/chain.pem")
    assert shown["brokers"][0]["listeners"] == {"certificate+password": 8885}


def test_a_two_factor_client_needs_a_password():
    client = {k: v for k, v in TWO_FACTOR_CLIENT.items() if k != "password"}
    problems = mosquitto.validate(settings(mosquitto_listeners=TWO_FACTOR, mosquitto_clients=[client]))
    assert problems == ["mosquitto_clients[0].password is missing or empty for certificate+password client 'gw-01'; "
                        "set it from the vault (e.g. \"{{ vault_mosquitto_passwords['gw-01'] }}\")."], problems


@pytest.mark.parametrize("weaker", LISTENERS, ids=["password", "certificate"])
def test_a_two_factor_client_beside_a_one_factor_listener_is_refused(weaker):
    """Mosquitto 2.0 keeps one password file for every listener, and a certificate listener logs the certificate's
    name in without a password: either listener would admit a two-factor client with one factor."""
    problems = mosquitto.validate(settings(mosquitto_listeners=[*TWO_FACTOR, weaker],
                                           mosquitto_clients=[TWO_FACTOR_CLIENT]))
    assert len(problems) == 1, problems
    assert problems[0].startswith("mosquitto_clients[0].auth is 'certificate+password' for 'gw-01', but "
                                  f"mosquitto_listeners[1] ({weaker['name']!r}, authentication: "
                                  f"{weaker['authentication']}) would admit it with one factor"), problems


# Security review M1: a name ending in a line break passed `re.match("^...$")` ($ matches before a final \n)
# and injected lines into the ACL file; every validator now matches the whole string.
INJECTION = [
    {"name": "dashboard", "auth": "password", "password": PW, "subscribe": ["sensors/#"]},
    {"name": "dashboard\n", "auth": "certificate",
     "publish": ["%utopic readwrite $SYS/#", "%utopic read commands/#", "%uuser ops-admin"]},
]


@pytest.mark.parametrize("name", ["dashboard\n", "dash\nboard", "dashboard\r", "\ndashboard", "dash\x1bboard"])
def test_a_name_with_a_line_break_or_control_character_is_refused(name):
    clients = [{"name": name, "auth": "certificate", "publish": ["devices/%u/#"]}]
    errors = mosquitto.validate(settings(mosquitto_clients=clients))
    assert any(e.startswith("mosquitto_clients[0].name is") for e in errors), errors


def test_the_reviewed_acl_injection_is_refused_by_validation():
    errors = mosquitto.validate(settings(mosquitto_clients=INJECTION))
    assert any(e.startswith("mosquitto_clients[1].name is") for e in errors), errors


def test_the_rendered_acl_is_parsed_back_and_an_injection_never_renders():
    """Defence in depth: were validation bypassed, the ACL is refused before it reaches a file."""
    with pytest.raises(ValueError, match="not a user, topic or pattern line"):
        mosquitto.acl_lines(INJECTION)
    with pytest.raises(ValueError, match="two sections"):
        mosquitto.acl_lines([{"name": "a", "publish": ["x"]}, {"name": "a", "publish": ["y"]}])
    with pytest.raises(ValueError, match="not a user, topic or pattern line"):
        mosquitto.acl_lines([{"name": "a", "publish": ["x\x1b[2J"]}])


@pytest.mark.parametrize("topic", ["a\x00b", "a\nb", "a\rb", "a\x1bb", "a\x7fb", "a/\x01"])
def test_a_topic_with_a_control_character_is_refused(topic):
    assert "control characters" in mosquitto.topic_filter_problem(topic)


@pytest.mark.parametrize("value", ["14d\n", "14d\n1"])
def test_expiration_must_match_as_a_whole(value):
    errors = mosquitto.validate(settings(mosquitto_persistent_client_expiration=value))
    assert any("mosquitto_persistent_client_expiration" in e for e in errors), errors


# Review M6, L14: both escape hatches are allow-lists.
@pytest.mark.parametrize("line", [
    "allow_anonymous true", "capath /etc/ssl/certs", "use_subject_as_username true", "psk_hint rampart",
    "mount_point anyone/", "protocol websockets", "http_dir /srv", "auth_plugin /x.so", "password_file /tmp/p",
])
def test_a_listener_option_that_weakens_or_names_a_file_is_refused(line):
    listeners = [{**LISTENERS[0], "extra_options": [line]}, LISTENERS[1]]
    errors = mosquitto.validate(settings(mosquitto_listeners=listeners))
    assert len(errors) == 1 and errors[0].startswith("mosquitto_listeners[0].extra_options[0] sets"), errors


@pytest.mark.parametrize("line", [
    "connection core", "address 10.0.0.9:8883", "plugin /usr/lib/x.so", "psk_file /etc/psk",
    "allow_zero_length_clientid true", "auto_id_prefix x-", "max_connections_per_IP 10", "max_payload_size 1024",
    "include_dir /etc/mosquitto/conf.d", "log_dest file /tmp/all.log",
])
def test_a_global_option_that_weakens_opens_or_names_a_file_is_refused(line):
    errors = mosquitto.validate(settings(mosquitto_extra_options=[line]))
    assert len(errors) == 1 and errors[0].startswith("mosquitto_extra_options[0] sets"), errors


def test_the_allowed_tuning_options_pass():
    listeners = [{**LISTENERS[0], "extra_options": sorted(f"{o} 1" for o in mosquitto.EXTRA_LISTENER_OPTIONS)},
                 LISTENERS[1]]
    extra = sorted(f"{o} 1" for o in mosquitto.EXTRA_GLOBAL_OPTIONS)
    assert mosquitto.validate(settings(mosquitto_listeners=listeners, mosquitto_extra_options=extra)) == []
    assert not mosquitto.EXTRA_GLOBAL_OPTIONS & (mosquitto.OWNED_GLOBAL_OPTIONS | mosquitto.LISTENER_OPTIONS)
    assert mosquitto.EXTRA_LISTENER_OPTIONS <= mosquitto.LISTENER_OPTIONS
    assert not mosquitto.EXTRA_LISTENER_OPTIONS & mosquitto.OWNED_LISTENER_OPTIONS


# Review L7: the hash is cheap to guess against, so only long passwords pass.
def test_a_short_password_is_refused_without_echoing_it():
    clients = [{"name": "sensor-01", "password": "Sh0rt-secret-1", "publish": ["sensors/%u/#"]}]
    errors = mosquitto.validate(settings(mosquitto_clients=clients))
    assert len(errors) == 1 and errors[0].startswith("mosquitto_clients[0].password of password client 'sensor-01' "
                                                     "is shorter than mosquitto_password_min_length (16)"), errors
    assert "Sh0rt-secret-1" not in errors[0] and "14" not in errors[0]
    assert mosquitto.validate(settings(mosquitto_clients=clients, mosquitto_password_min_length=12)) == []
    assert mosquitto.validate(settings(mosquitto_password_min_length=8)) == [
        "mosquitto_password_min_length is 8; use an integer from 12 to 1024."]


# The guides' ceilings (issue 14): the QoS ceiling and the retained messages' expiry are variables the role owns.
@pytest.mark.parametrize(("over", "says"), [
    ({"mosquitto_max_qos": 3}, "mosquitto_max_qos is 3; use an integer from 0 to 2."),
    ({"mosquitto_retain_expiry_interval": -1}, "mosquitto_retain_expiry_interval is -1"),
    ({"mosquitto_retain_expiry_interval": 60, "mosquitto_debian12_source": "main"},
     "mosquitto_retain_expiry_interval needs Mosquitto 2.0.21"),
    ({"mosquitto_extra_options": ["retain_expiry_interval 60"]}, "mosquitto_extra_options[0] sets"),
    ({"mosquitto_listeners": [{**LISTENERS[0], "extra_options": ["max_qos 2"]}, LISTENERS[1]]},
     "mosquitto_listeners[0].extra_options[0] sets"),
])
def test_the_guides_ceilings_are_checked(over, says):
    errors = mosquitto.validate(settings(**over))
    assert len(errors) == 1 and says in errors[0], errors


def test_no_retained_expiry_is_fine_on_debian_12_main():
    assert mosquitto.validate(settings(mosquitto_retain_expiry_interval=0, mosquitto_debian12_source="main")) == []


@pytest.mark.parametrize(("change", "where", "text"), [
    (lambda c: c.pop("name"), "mosquitto_clients[0].name", "use 1-64 characters"),
    (lambda c: c.update(name=7), "mosquitto_clients[0].name", "use 1-64 characters"),
    (lambda c: c.update(auth="magic"), "mosquitto_clients[0].auth", "use one of"),
    (lambda c: c.update(password=12345678901234567890), "mosquitto_clients[0].password", "is missing or empty"),
    (lambda c: c.update(admin="yes"), "mosquitto_clients[0].admin", "must be true or false"),
    (lambda c: c.update(broad="yes"), "mosquitto_clients[0].broad", "must be true or false"),
    (lambda c: c.update(publish="sensors/%u/x"), "mosquitto_clients[0].publish", "must be a list"),
    (lambda c: c.update(subscribe=[5]), "mosquitto_clients[0].subscribe[0]", "write a valid MQTT topic filter"),
    (lambda c: c.update(deny="x"), "mosquitto_clients[0].deny", "must be a list"),
    (lambda c: c.update(revoked="no"), "mosquitto_clients[0].revoked", "must be true or false"),
    (lambda c: c.update(description=["a"]), "mosquitto_clients[0].description", "must be text"),
    (lambda c: c.update(colour="red"), "mosquitto_clients[0]", "has unknown key(s) ['colour']"),
])
def test_every_client_key_is_checked_here_not_only_by_the_argument_spec(change, where, text):
    """Every rule the argument spec has on a client's keys is this validation's too, naming the entry: the role's
    validation does not depend on Ansible's argument spec check (which names the key, not the entry)."""
    clients = [{"name": "sensor-01", "auth": "password", "password": PW, "publish": ["sensors/%u/#"]}]
    change(clients[0])
    problems = mosquitto.validate(settings(mosquitto_clients=clients))
    assert any(p.startswith(where) and text in p for p in problems), problems


def test_a_client_that_is_no_mapping_is_refused():
    problems = mosquitto.validate(settings(mosquitto_clients=["sensor-01"]))
    assert any(p.startswith("mosquitto_clients[0] must be a mapping") for p in problems), problems
