"""Jinja tests for the log_collector role's assert.yml; the logic lives in rampart.logship."""

from rampart.logship import is_ip_address


def log_collector_ip_address(value):
    return is_ip_address(value)


class TestModule:
    def tests(self):
        return {"log_collector_ip_address": log_collector_ip_address}
