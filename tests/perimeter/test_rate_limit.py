"""Per-source limits on the broker ports: the N+1th rapid new connection is dropped, and so is one past the cap on
concurrent connections; other sources are unaffected."""

from __future__ import annotations

import random

import pytest

from tests.support.docker import probe, tcp

from .conftest import PERIMETER, SEGMENT_CLIENT, VPN_CLIENT, docker_exec, mqtt_roundtrip

pytestmark = pytest.mark.floods


# Host numbers for fresh sources, each used once per session: a test given the address an earlier test flooded
# meets that source's exhausted rate meter (the likely cause of one rehearsal's cap-test failure: 3 timeouts, then
# an open, as if the meter refilled one token).
FRESH_HOSTS = iter(random.sample(range(100, 200), 100))


@pytest.fixture
def flood_source(desc):
    """A fresh source address on the segment client's interface (fresh: the limit meters remember sources)."""
    container = SEGMENT_CLIENT["container"]
    prefix = PERIMETER["rate_limit_source"].split("/")[1]
    base = PERIMETER["rate_limit_source"].split("/")[0].rsplit(".", 1)[0]
    address = f"{base}.{next(FRESH_HOSTS)}"
    res = docker_exec(container, "ip", "addr", "add", f"{address}/{prefix}", "dev", "eth0")
    assert res.returncode == 0, res.stderr
    yield container, address
    docker_exec(container, "ip", "addr", "del", f"{address}/{prefix}", "dev", "eth0")


def test_n_plus_first_rapid_connection_is_dropped(broker, desc, flood_source):
    container, source = flood_source
    burst = broker["mqtt_rule"]["burst"]
    results = [tcp(container, broker["segment_address"], broker["listeners"]["password"], timeout=1.5, source=source)
               for _ in range(burst + 2)]
    assert results[:burst] == ["open"] * burst, f"the first {burst} connections were not all accepted: {results}"
    assert results[burst] == "timeout", f"connection {burst + 1} was not dropped: {results}"
    # The legitimate client (the same container's own address) is unaffected, right away.
    legit = mqtt_roundtrip(container, broker, broker["segment_address"])
    assert legit == {"connack": 0, "roundtrip": True}, legit
    vpn = mqtt_roundtrip(VPN_CLIENT["container"], broker, broker["vpn_address"])
    assert vpn == {"connack": 0, "roundtrip": True}, vpn


def test_a_source_holding_its_cap_of_connections_gets_no_more_while_another_source_does(broker, flood_source):
    """The cap on concurrent connections per source (nftables ct count; perimeter_mqtt_max_connections), told apart
    from the rate limit: the scenario sets the cap below the burst, so with the cap's connections held open the next
    one from that source is dropped although the rate would let it through, while the same container's own address
    still connects."""
    container, source = flood_source
    cap, burst = broker["mqtt_rule"]["max_connections"], broker["mqtt_rule"]["burst"]
    assert 0 < cap < burst, f"the scenario must set the cap ({cap}) below the burst ({burst}) to tell the two apart"
    answer = probe(container, "hold", broker["segment_address"], broker["listeners"]["password"], cap + 1, 1.5, source)
    assert answer.get("held") == ["open"] * cap + ["timeout"], answer
    assert answer["other"] == "open", answer
