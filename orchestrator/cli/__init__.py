"""The `mxctl` command line."""
