"""Backups of the mail pair: the host agent (agent/, uploaded to the mail hosts by the
deploy) and the operator's side (`mxctl backup ...`), which drives the agent over SSH."""
