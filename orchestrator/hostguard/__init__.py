"""mxctl-guard: self-fencing on each mail host (see rules.py for the roles).

Shipped to the mail hosts as a package of its own (`mxctl_hostguard`, copied file by file
by deploys/guard.py) and run by Debian's python3 with Debian's python3-dnspython: it
imports only the standard library, dnspython and itself (relative imports), which
tests/deploy/test_hostguard.py checks.
"""
