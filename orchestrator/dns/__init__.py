"""DNS: providers behind one compare-and-swap protocol, plans, and verification.

`records` holds the value objects, `plan` decides what to change and refuses unsafe
plans, `provider` is the protocol and base, one module per provider (`rfc2136`,
`powerdns`, `cloudflare/`, `route53`), each parsing its own settings, found through
`registry`; `verify` proves the result at every authoritative server.
"""
