"""The controller cluster: several `mxctl watch` on etcd, one leader acts (issue 15)."""
