"""The local lab: a disposable copy of production made of network namespaces on this machine."""
