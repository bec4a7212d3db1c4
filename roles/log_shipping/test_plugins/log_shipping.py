"""Jinja tests for the log_shipping role's assert.yml; the logic lives in rampart.logship."""

from rampart.logship import is_ip_address, size_bytes


def log_shipping_ip_address(value):
    return is_ip_address(value)


def log_shipping_size(value):
    try:
        size_bytes(value)
    except ValueError:
        return False
    return True


class TestModule:
    def tests(self):
        return {"log_shipping_ip_address": log_shipping_ip_address, "log_shipping_size": log_shipping_size}
