"""rampart.mqtt.host_state: what playbooks/prepare.yml's one command says a host has installed and running."""

from __future__ import annotations

from ansible_collections.rampart.mqtt.plugins.module_utils import host_state

# As the three commands print it on a Debian 12 broker (abridged): "rc" is removed with its config left.
LISTING = """\
# packages
ii  mosquitto
ii  nftables
rc  fail2ban
iU  rsyslog-relp
# units
fail2ban.service                     loaded    failed   failed  Fail2Ban Service
mosquitto.service                    loaded    active   running Mosquitto MQTT broker (Rampart hardened)
rampart-nftables.service             loaded    inactive dead    Rampart firewall table (nftables)
rsyslog.service                      loaded    active   running System Logging Service
systemd-networkd.service             loaded    active   running Network Configuration
wg-quick@wg0.service                 loaded    active   exited  WireGuard via wg-quick(8) for wg0
# unit files
fail2ban.service                       enabled         enabled
mosquitto.service                      enabled         enabled
rampart-nftables.service               enabled         enabled
rsyslog.service                        enabled         enabled
systemd-networkd.service               disabled        enabled
wg-quick@.service                      indirect        enabled
# apt index age
1234
"""


def test_installed_packages_only():
    assert host_state.parse(LISTING)["packages"] == ["mosquitto", "nftables"]


def test_running_means_active_and_enabled():
    state = host_state.parse(LISTING)
    # fail2ban failed, networkd is disabled, the nftables boot unit is inactive, a template instance is never listed
    # as enabled: each of those roles runs its step.
    assert state["running"] == ["mosquitto.service", "rsyslog.service"]
    assert state["enabled"] == ["fail2ban.service", "mosquitto.service", "rampart-nftables.service",
                                "rsyslog.service"]


def test_the_index_age_and_a_refresh_when_it_cannot_be_read():
    assert host_state.parse(LISTING)["apt_index_age"] == 1234
    # Unreadable, missing or in the future: old enough to refresh (prepare.yml refreshes above 3,600 s).
    for text in ("# apt index age\nstat: cannot stat\n", "# apt index age\n", "# apt index age\n-20\n"):
        assert host_state.parse(text)["apt_index_age"] > 3600


def test_nothing_listed_means_nothing_to_skip():
    assert host_state.parse("") == {"packages": [], "enabled": [], "running": [], "apt_index_age": host_state.STALE}
    # Output before any marker (a login banner) is not read as a section.
    assert host_state.parse("ii  mosquitto\nmosquitto.service loaded active running x\n")["packages"] == []
