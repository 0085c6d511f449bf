"""The wheel, built from the tracked files as a user's pip builds it: what it carries, and nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from conformance import __version__
from tests.conftest import ROOT


def test_the_wheel_carries_the_kit_the_contract_and_the_licence_and_no_stray_package(tmp_path: Path) -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    source = tmp_path / "source"
    for name in tracked:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "dist"), str(source)],
        check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("executor_conformance-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith((".dist-info", ".data"))} == {
        "conformance", "reference_executor", "executor_pool", "executor_serving",
    }  # fmt: skip
    data = f"executor_conformance-{__version__}.data/data/share/executor-conformance"
    expected = {
        f"{data}/contract.md", f"{data}/openapi.yaml", f"executor_conformance-{__version__}.dist-info/licenses/LICENSE",
        "conformance/schemas/results-1.schema.json", "conformance/schemas/results-2.schema.json",
        "conformance/schemas/results-3.schema.json",
        "conformance/schemas/bench-1.schema.json",
        "conformance/suite/pytest.ini", "conformance/openapi.yaml",
    }  # fmt: skip
    assert expected <= set(names), sorted(expected - set(names))
