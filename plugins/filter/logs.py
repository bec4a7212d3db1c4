"""Filters for the log pipeline's wiring; logic in module_utils.logship."""

from __future__ import annotations

from ansible_collections.rampart.mqtt.plugins.module_utils import logship


def log_targets(collectors, hostvars):
    return logship.targets(list(collectors), hostvars)


def log_client_name(host):
    return logship.client_name(str(host))


def log_client_names(hosts):
    return [logship.client_name(str(h)) for h in hosts]


class FilterModule:
    def filters(self):
        return {"log_targets": log_targets, "log_client_name": log_client_name, "log_client_names": log_client_names}
