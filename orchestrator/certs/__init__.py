"""Certificates through ACME DNS-01, answered with the DNS providers mxctl already drives."""
