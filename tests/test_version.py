"""The project's version has one home, pyproject.toml: the packages read it (the installed
distribution's), and the places that cannot (the image's label, the CI templates' pins of the kit's
release) are held to it here (issue #31: it was written in five places, held by nothing)."""

from __future__ import annotations

import re
import tomllib

import conformance
import executor_serving
import reference_executor
from tests.conftest import ROOT


def test_every_package_and_template_names_the_projects_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert conformance.__version__ == executor_serving.__version__ == reference_executor.__version__ == version
    # The image's label, which a Dockerfile cannot read from the package: held to it here.
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.findall(r'image\.version="([^"]*)"', dockerfile) == [version]
    # The CI templates pin the kit's release: the tag of this version.
    for template in sorted((ROOT / "ci-templates").iterdir()):
        pins = set(re.findall(r"v(\d+\.\d+\.\d+)", template.read_text(encoding="utf-8")))
        assert pins == {version}, (template.name, pins)
