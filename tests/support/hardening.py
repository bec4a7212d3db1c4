"""The kernel hardening the vlan role puts in force (its sysctl drop-in, /etc/sysctl.d/60-rampart-vlan.conf), as the
tests expect it: in containers (tests/perimeter) and after a reboot on real kernels (tests/vm)."""

SYSCTL_DROP_IN = "/etc/sysctl.d/60-rampart-vlan.conf"

HARDENED_SYSCTLS = {
    "net.ipv4.conf.all.rp_filter": 1,
    "net.ipv4.conf.default.rp_filter": 1,
    "net.ipv4.conf.all.accept_redirects": 0,
    "net.ipv4.conf.default.accept_redirects": 0,
    "net.ipv4.conf.all.secure_redirects": 0,
    "net.ipv4.conf.all.send_redirects": 0,
    "net.ipv6.conf.all.accept_redirects": 0,
    "net.ipv4.conf.all.accept_source_route": 0,
    "net.ipv6.conf.all.accept_source_route": 0,
    "net.ipv4.conf.all.log_martians": 1,
    "net.ipv4.ip_forward": 0,
    "net.ipv6.conf.all.forwarding": 0,
}
