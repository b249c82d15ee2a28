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


def build_wheels(dest: Path, root: Path = REPO_ROOT) -> Path:
    """A directory of wheels for `pip install --no-index --find-links DIR mxctl`."""
    stamp = dest / f".built-{_source_digest(root)}"
    if stamp.exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(dest), str(root)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        raise MxctlError(f"building mxctl wheels failed: {' | '.join(tail)}")
    stamp.touch()
    return dest
