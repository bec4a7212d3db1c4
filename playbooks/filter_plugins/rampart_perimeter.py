"""Address filters for the perimeter wiring (playbooks/vars/perimeter.yml); logic in rampart.perimeter."""

from __future__ import annotations

from rampart import perimeter


class FilterModule:
    def filters(self):
        return {"rampart_network": perimeter.network, "rampart_address": perimeter.address}
