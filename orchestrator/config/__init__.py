"""The controller's configuration (`mxctl.toml`): loaded once, validated once."""

from orchestrator.config.dns_section import DnsConfig
from orchestrator.config.loader import MxctlConfig, default_config_path, load_config, parse_config
from orchestrator.config.secrets import Secret, resolve_secret

__all__ = [
    "DnsConfig",
    "MxctlConfig",
    "Secret",
    "default_config_path",
    "load_config",
    "parse_config",
    "resolve_secret",
]
