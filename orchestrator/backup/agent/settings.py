"""The agent's settings, written by the deploy to /etc/mxctl/backup/agent.json (0600).

The file holds paths to the secrets (repository password, SSH key, S3 keys), never the
secrets themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = Path("/etc/mxctl/backup/agent.json")
STATE_DIR = Path("/var/lib/mxctl-backup")
STAGING = STATE_DIR / "staging"  # the consistent copy restic reads (see stage())
MAIL_STAGING = STAGING / "mail"
MANIFEST = STAGING / "manifest.json"
SCRATCH = STATE_DIR / "scratch"
STATE_FILE = STATE_DIR / "state.json"
LOCK_FILE = STATE_DIR / "lock"
CACHE_DIR = Path("/var/cache/mxctl-backup")
FENCE_MARKER = Path("/etc/mxctl/fenced")


@dataclass(frozen=True)
class AgentSettings:
    repository: str
    password_file: str
    host_tag: str  # one restic lineage for the pair, whichever host is primary
    fqdn: str
    mx_domain: str
    interval_s: int
    max_age_s: int
    keep_flags: tuple[str, ...]
    extra_paths: tuple[str, ...]  # what rebuilds a host: users file, DKIM key, TLS, config
    excludes: tuple[str, ...]
    sftp_command: str = ""
    s3_env_file: str = ""

    @classmethod
    def load(cls, path: Path = CONFIG_FILE) -> AgentSettings:
        raw = json.loads(path.read_text())
        raw["keep_flags"] = tuple(raw["keep_flags"])
        raw["extra_paths"] = tuple(raw["extra_paths"])
        raw["excludes"] = tuple(raw["excludes"])
        return cls(**raw)
