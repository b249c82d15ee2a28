"""The house rules of the layout: the product never carries or needs the lab.

- orchestrator/ and deploys/ never import mxlab (checked in the source and by importing
  every product module with mxlab made unimportable);
- bench/ never imports tests/;
- every package under orchestrator/ is listed in pyproject.toml (setuptools does not find
  them, since deploys/ is renamed mxctl_deploys);
- the production wheel holds orchestrator and mxctl_deploys with their templates, no lab.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMPORT = re.compile(r"^\s*(?:from|import)\s+([\w.]+)", re.MULTILINE)


def imported_modules(folder: Path) -> dict[str, set[str]]:
    return {
        str(path.relative_to(REPO)): set(IMPORT.findall(path.read_text()))
        for path in folder.rglob("*.py")
    }


@pytest.mark.parametrize("folder", ["orchestrator", "deploys"])
def test_product_source_never_imports_the_lab(folder: str) -> None:
    offenders = {
        path: sorted(m for m in modules if m.split(".")[0] == "mxlab")
        for path, modules in imported_modules(REPO / folder).items()
    }
    assert {p: m for p, m in offenders.items() if m} == {}


def test_every_product_module_imports_without_the_lab() -> None:
    # sys.modules["mxlab"] = None makes any `import mxlab...` raise ImportError.
    script = (
        "import sys, pkgutil, importlib\n"
        "sys.modules['mxlab'] = None\n"
        "import orchestrator\n"
        "names = [m.name for m in pkgutil.walk_packages(orchestrator.__path__, 'orchestrator.')\n"
        "         if not m.name.endswith('.__main__')]  # importing one runs the program\n"
        "for name in names: importlib.import_module(name)\n"
        "from orchestrator.cli.main import build_parser\n"
        "print(len(names))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.strip()) > 50  # really walked the package


def test_benches_never_import_tests() -> None:
    offenders = {
        path: sorted(m for m in modules if m.split(".")[0] == "tests")
        for path, modules in imported_modules(REPO / "bench").items()
    }
    assert {p: m for p, m in offenders.items() if m} == {}


def test_every_orchestrator_package_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "orchestrator").rglob("__init__.py")
    }
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert "mxctl_deploys" in listed


def test_the_production_wheel_carries_no_lab(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = tmp_path.glob("mxctl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("mxctl-")}
    assert tops == {"orchestrator", "mxctl_deploys"}
    assert not [n for n in names if "lab" in n.split("/")[-1] or "mxlab" in n]
    assert "mxctl_deploys/mailpair.py" in names
    assert "mxctl_deploys/templates/postfix/main.cf.j2" in names
    assert "orchestrator/py.typed" in names
    entry_points = zipfile.ZipFile(wheel).read("mxctl-0.1.0.dist-info/entry_points.txt").decode()
    assert "mxctl.commands" not in entry_points  # `mxctl lab` comes only with mxctl-lab
