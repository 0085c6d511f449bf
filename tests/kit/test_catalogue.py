"""The contract's two halves and the catalogue agree."""

from __future__ import annotations

import re

import pytest
import yaml
from openapi_spec_validator import validate

from conformance import catalogue
from conformance.catalogue import Level
from conformance.cli import with_table
from tests.conftest import ROOT
from tests.readme import section

CONTRACT = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
POOL_CONTRACT = (ROOT / "docs" / "pool-contract.md").read_text(encoding="utf-8")
TAGGED = re.compile(r"\*\*\[(MUST|SHOULD|MAY) ([A-Z]+-\d+)\]\*\*")


@pytest.mark.parametrize("path", ["openapi.yaml", "conformance/pool-openapi.yaml"])
def test_openapi_documents_are_valid_openapi_3_1(path: str) -> None:
    document = yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_kit_ships_the_same_openapi_document() -> None:
    assert (ROOT / "conformance" / "openapi.yaml").read_text() == (ROOT / "openapi.yaml").read_text()


@pytest.mark.parametrize(
    ("document", "profile"), [(CONTRACT, catalogue.Profile.FULL), (POOL_CONTRACT, catalogue.Profile.POOL)]
)
def test_every_requirement_is_stated_once_in_its_contract_with_its_level(
    document: str, profile: catalogue.Profile
) -> None:
    """The executor contract states the executor's requirements, the pool contract the pool's."""
    tagged = TAGGED.findall(document)
    ids = [rid for _, rid in tagged]
    assert sorted(ids) == sorted(catalogue.of_profile(profile)), "contract sentences and catalogue differ"
    assert len(ids) == len(set(ids)), "a requirement is stated twice"
    for level, rid in tagged:
        assert catalogue.get(rid).level is Level(level), f"{rid} is {level} in the contract"
    assert set(catalogue.of_profile(catalogue.Profile.FULL)) | set(catalogue.of_profile(catalogue.Profile.POOL)) == set(
        catalogue.REQUIREMENTS
    ), "a requirement belongs to neither contract"


def test_the_pool_contracts_table_is_generated_from_the_catalogue() -> None:
    assert section(POOL_CONTRACT, "pool-requirements") == catalogue.markdown_table(
        catalogue.of_profile(catalogue.Profile.POOL)
    ), "run: nox -s docs"
    assert POOL_CONTRACT.startswith(f"# Pool contract, version {catalogue.POOL_CONTRACT_VERSION}\n")
    manager_api = yaml.safe_load((ROOT / "conformance" / "pool-openapi.yaml").read_text(encoding="utf-8"))
    assert manager_api["info"]["version"] == catalogue.POOL_CONTRACT_VERSION


def test_contract_requirement_table_is_generated_from_the_catalogue() -> None:
    assert with_table(CONTRACT) == CONTRACT, "run: executor-conformance catalogue --write docs/contract.md"


def test_unknown_requirement_lookup_lists_the_valid_ids() -> None:
    with pytest.raises(catalogue.UnknownRequirementError, match="valid IDs: HEALTH-1, HEALTH-2"):
        catalogue.get("NOPE-1")


def test_duplicate_requirement_ids_are_refused() -> None:
    requirement = catalogue.get("EXEC-1")
    with pytest.raises(ValueError, match="duplicate requirement ID 'EXEC-1'"):
        catalogue._index([requirement, requirement])


def test_issue_catalogue_ids_are_all_present() -> None:
    expected = {f"{area}-{n}" for area, count in ISSUE_AREAS.items() for n in range(1, count + 1)}
    assert expected <= set(catalogue.REQUIREMENTS)


#: The requirement areas of the contract issue, and how many requirements each has.
ISSUE_AREAS = {"HEALTH": 2, "READY": 4, "EXEC": 7, "STATE": 1, "ERROR": 2, "TIMEOUT": 7, "RESTART": 5, "CODE": 5,
               "CONC": 2, "INPUT": 3, "OUTPUT": 2, "CRASH": 3, "SEC": 3, "SCHEMA": 1, "INFO": 1}  # fmt: skip


def test_every_place_that_names_the_contract_version_names_the_catalogues() -> None:
    """The documents, the images' labels and the executors' /info all say the contract they keep."""
    version = catalogue.CONTRACT_VERSION
    assert CONTRACT.startswith(f"# Executor contract, version {version}\n")
    assert yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))["info"]["version"] == version
    for dockerfile in (ROOT / "Dockerfile", ROOT / "examples" / "subprocess_executor" / "Dockerfile"):
        text = dockerfile.read_text(encoding="utf-8")
        named = set(re.findall(r"contract (\d+\.\d+)", text)) | set(re.findall(r'contract\.version="([\d.]+)"', text))
        assert named == {version}, (dockerfile, named)
    app = (ROOT / "reference_executor" / "app.py").read_text(encoding="utf-8")
    assert re.findall(r'^CONTRACT_VERSION = "([\d.]+)"', app, re.MULTILINE) == [version]
