"""The kinds of target have one home, ``conformance/targets/spec.py`` (issue #31): the kit asks a
target or the registry what it needs to know, and nothing else branches on the kind."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conformance import languages
from conformance.options import TARGET_OPTIONS
from conformance.settings import KIT_SETTINGS
from conformance.targets import Target, TargetKind, TargetSpec, Workspace
from conformance.targets.spec import KINDS
from conformance.timeouts import KitTimeouts
from tests.conftest import ROOT

KIT = ROOT / "conformance"
REGISTRY = KIT / "targets" / "spec.py"
#: The classes of the kinds: only the registry names them (outside their own modules).
KIND_CLASSES = {"ProcessTarget", "ImageTarget", "UrlTarget"}


def _branches_on_the_kind(path: Path, root: Path = ROOT) -> list[str]:
    """Where ``path`` tells kinds apart (said relative to ``root``): ``isinstance`` with a kind's
    class, a ``TargetKind`` member, or a comparison of a ``.kind``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2:
            named = {getattr(sub, "id", None) or getattr(sub, "attr", None) for sub in ast.walk(node.args[1])}
            if named & KIND_CLASSES:
                found.append(f"{path.relative_to(root)}:{node.lineno} isinstance")
        elif isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "TargetKind":
            found.append(f"{path.relative_to(root)}:{node.lineno} TargetKind.{node.attr}")
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(side, ast.Attribute) and side.attr == "kind" for side in sides):
                found.append(f"{path.relative_to(root)}:{node.lineno} a comparison of .kind")
    return found


def test_nothing_outside_the_registry_branches_on_the_kind_of_target() -> None:
    kinds_own = {KIT / "targets" / f"{kind.value}.py" for kind in TargetKind}
    found = [
        place
        for path in sorted(KIT.rglob("*.py"))
        if path != REGISTRY and path not in kinds_own
        for place in _branches_on_the_kind(path)
    ]
    assert found == [], f"ask the target or targets/spec.py instead: {', '.join(found)}"


def test_the_check_sees_a_branch_on_the_kind(tmp_path: Path) -> None:
    """The check above, on a module that does what it forbids (so that it cannot pass by seeing nothing)."""
    module = tmp_path / "planted.py"
    module.write_text(
        "def f(target, spec):\n"
        "    if isinstance(target, ProcessTarget) or spec.kind is TargetKind.URL:\n"
        "        return target.kind == 'image'\n",
        encoding="utf-8",
    )
    found = sorted(place.split(" ", 1)[1] for place in _branches_on_the_kind(module, tmp_path))
    assert found == ["TargetKind.URL", "a comparison of .kind", "a comparison of .kind", "isinstance"]


@pytest.mark.parametrize("kind", list(TargetKind))
def test_every_kind_has_its_option_and_builds_a_target_of_its_own(kind: TargetKind) -> None:
    entry = KINDS[kind]
    assert entry.kind is kind
    assert entry.option in {option.kwargs["dest"] for option in TARGET_OPTIONS}
    subject = entry.parse("http://127.0.0.1:1" if kind is TargetKind.URL else "x y")
    spec = TargetSpec(kind, KitTimeouts(), KIT_SETTINGS, subject, languages.load(languages.DEFAULT))
    target: Target = spec.target()
    assert target.kind == kind.value and target.launched_at is None and not target.startup_observations
    assert spec.describe() == {"kind": kind.value, entry.subject_key: subject}
    assert (spec.sibling(Workspace.MISSING) is not None) is entry.started_by_kit
