"""Filters for the log pipeline (collector, senders, fail2ban); logic in module_utils.logship and .fail2ban."""

from __future__ import annotations

from ansible_collections.rampart.mqtt.plugins.module_utils.lazy import LazyModule

fail2ban = LazyModule("fail2ban")
logship = LazyModule("logship")


def log_targets(collectors, hostvars):
    return logship.targets(list(collectors), hostvars)


def log_senders(hosts, hostvars):
    return logship.senders(list(hosts), hostvars)


def log_client_name(host):
    return logship.client_name(str(host))


def log_client_names(hosts):
    return [logship.client_name(str(h)) for h in hosts]


def log_collector_problems(settings: dict) -> list[str]:
    return logship.collector_problems(dict(settings))


def log_shipping_problems(settings: dict) -> list[str]:
    return logship.shipping_problems(dict(settings))


def fail2ban_problems(settings: dict) -> list[str]:
    return fail2ban.problems(dict(settings))


class FilterModule:
    def filters(self):
        return {"log_targets": log_targets, "log_senders": log_senders, "log_client_name": log_client_name,
                "log_client_names": log_client_names,
                "log_collector_problems": log_collector_problems, "log_shipping_problems": log_shipping_problems,
                "fail2ban_problems": fail2ban_problems}
