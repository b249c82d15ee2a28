"""Health probes of the mail pair: SMTP, submission, IMAP, the end-to-end canary, the host
state over SSH and the parity check. Each probe returns a `ProbeResult` (result.py)."""
