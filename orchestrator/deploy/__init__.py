"""Deploy-side helpers: inventory validation, secrets, certificates and pyinfra runs.

The pyinfra deploys in `deploys/` stay thin; everything that can be decided without a host
(validating the inventory, hashing passwords, rendering secret files, issuing lab
certificates) lives here, typed and unit-tested.
"""
