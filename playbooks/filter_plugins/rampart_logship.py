"""Jinja filters for playbooks/vars/{collector,log_shipping}.yml; the logic lives in rampart.logship."""

from rampart.logship import client_name, targets


def rampart_log_targets(collectors, hostvars):
    return targets(list(collectors), hostvars)


def rampart_log_client_name(host):
    return client_name(str(host))


def rampart_log_client_names(hosts):
    return [client_name(str(h)) for h in hosts]


class FilterModule:
    def filters(self):
        return {
            "rampart_log_targets": rampart_log_targets,
            "rampart_log_client_name": rampart_log_client_name,
            "rampart_log_client_names": rampart_log_client_names,
        }
