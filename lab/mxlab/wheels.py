"""Wheels of mxctl and its dependencies, built from this checkout for the lab's controller.

A controller host installs mxctl from these with `pip --no-index`: it needs no access to
a package index (the lab's hosts have none, and production controllers should not need
one either). The set is rebuilt only when the package's sources or pyproject change.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestrator.errors import MxctlError

# lab/mxlab/wheels.py -> the checkout holding mxctl's pyproject.toml.
REPO_ROOT = Path(__file__).resolve().parents[2]


def _source_digest(root: Path) -> str:
    digest = hashlib.sha256()
    files = [
        root / "pyproject.toml",
        *sorted((root / "orchestrator").rglob("*.py")),
        *sorted((root / "deploys").rglob("*.py")),
    ]
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_wheels(base: Path, root: Path = REPO_ROOT) -> Path:
    """A directory of wheels for `pip install --no-index --find-links DIR mxctl`, under
    `base`, one per source digest: labs of other checkouts beside this one (a CI run and a
    developer's lab) each keep their own set instead of deleting each other's mid-install.
    Sets unused for a day are removed."""
    dest = base / _source_digest(root)
    if (dest / ".built").exists():
        dest.touch()
        return dest
    base.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():
        if old != dest and time.time() - old.stat().st_mtime > 86400:
            shutil.rmtree(old, ignore_errors=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=base))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(building), str(root)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        tail = proc.stderr.strip().splitlines()[-5:]
        raise MxctlError(f"building mxctl wheels failed: {' | '.join(tail)}")
    (building / ".built").touch()
    try:
        building.rename(dest)
    except OSError:  # another process of this checkout finished first: its set is the same
        shutil.rmtree(building, ignore_errors=True)
    return dest
