"""pyinfra deploys that exist only in the lab (the outside MTA)."""
