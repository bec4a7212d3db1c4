"""The host-side check tool (roles/mosquitto/files/rampart-mosquitto-check), standard library only.

It cannot import the rampart package on the broker, so it keeps its own list of listener-scoped
options; this test keeps that list identical to rampart.mosquitto's.
"""

import importlib.machinery
import importlib.util

import pytest
from ansible_collections.rampart.mqtt.plugins.module_utils import mosquitto

from tests.support import ROLES_DIR

TOOL = ROLES_DIR / "mosquitto" / "files" / "rampart-mosquitto-check"


@pytest.fixture(scope="module")
def check():
    loader = importlib.machinery.SourceFileLoader("rampart_mosquitto_check", str(TOOL))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_listener_option_lists_agree(check):
    assert check.LISTENER_OPTIONS | {"listener"} == mosquitto.LISTENER_OPTIONS


GOOD = """# comment
per_listener_settings false
password_file /etc/mosquitto/passwd

listener 8883 10.0.0.1
certfile /etc/mosquitto/certs/server-chain.pem
keyfile /etc/mosquitto/certs/server.key
"""


def test_good_config_has_no_problems(check):
    assert check.lint(GOOD) == []


@pytest.mark.parametrize(("text", "problem"), [
    ("max_connections 5\nlistener 8883 10.0.0.1\n", "would open an extra listener on 0.0.0.0:1883"),
    ("certfile /x\nlistener 8883 10.0.0.1\n", "would open an extra listener"),
    ("allow_anonymous\tfalse\n", "contains a tab"),
    ("password_file /x # the file\n", "inline '#'"),
    ("password_file /a\npassword_file /b\n", "'password_file' is set twice"),
    ("include_dir /etc/mosquitto/conf.d\n", "include_dir is not allowed"),
])
def test_traps_are_reported(check, text, problem):
    problems = check.lint(text)
    assert any(problem in p for p in problems), problems


def test_connect_packet_is_a_valid_mqtt311_connect(check):
    packet = check.connect_packet("abc")
    assert packet[0] == 0x10 and packet[1] == len(packet) - 2
    assert packet[2:8] == b"\x00\x04MQTT" and packet[8] == 4
    assert packet.endswith(b"\x00\x03abc")
