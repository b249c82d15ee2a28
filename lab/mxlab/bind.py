"""BIND9 configuration of the lab's two authoritative servers.

ns1 is the primary for every lab zone and accepts RFC 2136 updates signed with the lab's
TSIG key; ns2 is a secondary kept current by NOTIFY + AXFR. Neither recurses: lab hosts
use them as resolvers only for lab names, and anything else is refused at once instead of
timing out (there is no route out of the lab).
"""

from __future__ import annotations

from mxlab.topology import (
    TSIG_ALGORITHM,
    TSIG_NAME,
    ZONES,
    HostSpec,
    host_spec,
    zone_text,
)

ZONE_DIR = "/var/lib/bind"


def _options() -> str:
    return """options {
    directory "/var/cache/bind";
    listen-on { any; };
    listen-on-v6 { none; };
    recursion no;
    allow-query { any; };
    dnssec-validation no;
    // Lab secondaries should see a change at once, not after the default notify delay.
    notify-delay 0;
    minimal-responses no;
};
"""


def named_conf(spec: HostSpec, tsig_secret_b64: str) -> str:
    ns2 = host_spec("ns2")
    parts = [
        _options(),
        f'key "{TSIG_NAME}" {{ algorithm {TSIG_ALGORITHM}; secret "{tsig_secret_b64}"; }};\n',
    ]
    for zone in ZONES:
        if spec.role == "dns-primary":
            parts.append(
                f'zone "{zone}" {{\n'
                "    type primary;\n"
                f'    file "{ZONE_DIR}/{zone}.zone";\n'
                f'    allow-update {{ key "{TSIG_NAME}"; }};\n'
                f'    allow-transfer {{ {ns2.address}; key "{TSIG_NAME}"; }};\n'
                "    notify explicit;\n"
                f"    also-notify {{ {ns2.address}; }};\n"
                "};\n"
            )
        else:
            ns1 = host_spec("ns1")
            parts.append(
                f'zone "{zone}" {{\n'
                "    type secondary;\n"
                f'    file "{ZONE_DIR}/{zone}.sec";\n'
                f"    primaries {{ {ns1.address}; }};\n"
                f"    allow-notify {{ {ns1.address}; }};\n"
                "};\n"
            )
    return "\n".join(parts)


def zone_files(spec: HostSpec) -> dict[str, str]:
    """Files to place under ZONE_DIR: the primary's zone files; the secondary starts empty."""
    if spec.role != "dns-primary":
        return {}
    return {f"{zone}.zone": zone_text(zone) for zone in ZONES}
