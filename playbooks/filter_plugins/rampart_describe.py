"""Jinja filter for playbooks/describe.yml; the logic lives in rampart.describe."""

from rampart.describe import describe


def rampart_describe(brokers, clients, ca_file, client_cert_dir, include_passwords=False):
    return describe(list(brokers), list(clients), ca_file, client_cert_dir, bool(include_passwords))


class FilterModule:
    def filters(self):
        return {"rampart_describe": rampart_describe}
