"""The lab inventory gives the pair its backup settings when the lab has a `backup` host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mxlab import inventory as labinv
from mxlab.state import LabHost, LabState

from orchestrator.deploy.spec import load_pair
from tests.deploy.factories import make_ca

BACKUP_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBackupHostKeyForTheTest"


def test_lab_with_a_backup_host_backs_up_over_sftp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_cert, ca_key = make_ca(tmp_path / "ca")
    roles = [("ns1", 11, "dns-primary"), ("mx1", 21, "mail"), ("mx2", 22, "mail"),
             ("sender", 31, "sender"), ("backup", 41, "backup")]  # fmt: skip
    hosts = {
        name: LabHost(name, f"{name}.example.test", f"10.254.77.{n}", role, f"ns-{name}", "02:00")
        for name, n, role in roles
    }
    known = tmp_path / "known_hosts"
    known.write_text(f"10.254.77.41,backup,backup.example.test {BACKUP_KEY}\n")
    lab = LabState(
        name="lab", subnet="10.254.77.0/24", bridge="br0", gateway="10.254.77.1",
        zones=["example.org", "example.test"], hosts=hosts, ssh_user="root",
        ssh_key=str(tmp_path / "id"), known_hosts=str(known), tsig_name="k",
        tsig_algorithm="hmac-sha256", tsig_secret_file=str(tmp_path / "tsig"),
        ca_cert=str(ca_cert), ca_key=str(ca_key),
    )  # fmt: skip
    (tmp_path / "lab.json").write_text(lab.to_json())
    monkeypatch.setenv("MXCTL_LAB_DIR", str(tmp_path))
    inv = labinv.build(lab)
    backup = inv.mail_data["mail_backup"]
    assert backup["target"] == "sftp:mxbackup@backup.example.test:/repo"
    assert backup["ssh_known_hosts"].endswith(BACKUP_KEY)
    [(name, data)] = inv.backup
    assert name == "backup" and data["backup_authorized_key"].startswith("ssh-ed25519 ")
    key_file = Path(backup["ssh_key"].removeprefix("file:"))
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    pair = load_pair({n: {**d, **inv.mail_data} for n, d in inv.mail})
    assert pair.backup is not None and pair.backup.target.kind == "sftp"
    assert labinv.build(lab) == inv  # stable: nothing regenerated
