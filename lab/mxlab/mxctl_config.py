"""The lab's mxctl.toml: the rfc2136 provider at ns1 and the lab's MX and `mail` records.

`mxctl lab up` writes it to <state dir>/mxctl.toml. Facts come from the lab state only;
the TSIG secret stays in its 0600 file and is referenced, never copied.
"""

from __future__ import annotations

import json

from mxlab.state import LabState


def _q(value: str) -> str:
    return json.dumps(value)  # a TOML basic string is a JSON string for these values


def render_lab_config(state: LabState) -> str:
    primary = next(h for h in state.nameservers() if h.role == "dns-primary")
    mail_zone = state.zones[0]
    lines = [
        f"# mxctl config for the lab {state.name}; written by `mxctl lab up`.",
        "[dns]",
        'provider = "rfc2136"',
        f"zones = [{', '.join(_q(z) for z in state.zones)}]",
        "ttl = 300",
        "client_ttl = 60",
        "",
        "[dns.rfc2136]",
        f"server = {_q(primary.address)}",
        "port = 53",
        f"key_name = {_q(state.tsig_name)}",
        f"key_algorithm = {_q(state.tsig_algorithm)}",
        f"key_secret = {_q('file:' + state.tsig_secret_file)}",
        "timeout = 5",
        "",
    ]
    for zone in state.zones:
        lines += ["[[dns.records]]", f"name = {_q(zone)}", 'type = "MX"', "priority = 10", ""]
    lines += ["[[dns.records]]", f"name = {_q('mail.' + mail_zone)}", 'type = "A"', ""]
    lines.append("[dns.mail_hosts]")
    for host in sorted(state.hosts.values(), key=lambda h: h.name):
        if host.role == "mail":
            lines.append(f"{_q(host.fqdn)} = [{_q(host.address)}]")
    # No explicit nameservers: verification resolves each zone's NS set (ns1, ns2) itself.
    lines += [
        "",
        "[dns.verify]",
        "deadline = 60",
        "interval = 0.5",
        "",
    ]
    return "\n".join(lines)
