"""HTTP endpoints: the controller's /status, /metrics, /health and the witness's report."""
