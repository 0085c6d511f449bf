"""Language packs: the code of every scenario, from data (conformance/languages).

The Python pack must give every snippet, each valid Python; a pack file is checked when it is
loaded, with every problem named; a pack that lacks a snippet leaves exactly the requirements
whose tests need it *not run*; an executor that declares another language is not certified with
the wrong code.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import languages
from conformance.cli import main as kit_command
from reference_executor.isolation import claim_kernel_users, sweep
from tests.conftest import ROOT, reachable_by_every_user, run_kit
from tests.readme import section

PYTHON_PACK = ROOT / "conformance" / "languages" / "python"
#: A value of each kind for every parameter a snippet may take.
SAMPLE_PARAMS = {
    "expression": "1 + 1", "name": "some_variable", "text": "a 'quoted' \"text\"\n", "value": "v", "a": 20, "b": 22,
    "seconds": 0.5, "prefix": "p-", "count": 3, "char": "x", "scope": 0, "life": 60, "within": 20,
    "processes": [[1, "2", "c"]],
    "kinds": ["heartbeat"], "depth": 3, "files": 2, "token": "abc123", "persistent": ["/submission"],
    "paths": ["/tmp/a"], "signal_name": "SIGSTOP", "kit_namespace": "", "names": ["HOME"], "objects": [["shm", "1"]],
    "session": 4242, "targets": [["127.0.0.1", 1]], "url": "http://127.0.0.1:1/execute", "name_text": "some_variable",
}  # fmt: skip


#: The snippets that must not parse.
NOT_PYTHON = {"syntax_error", "invalid_assignment"}


def _copy_of_python(folder: Path, edit: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> Path:
    """The Python pack copied into ``folder`` (its workspace too), with lines replaced or snippets dropped."""
    shutil.copytree(PYTHON_PACK, folder, dirs_exist_ok=True)
    pack = folder / "pack.toml"
    lines = pack.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not any(line.startswith(f"{name} = ") for name in drop)]
    text = "\n".join(kept) + "\n"
    for old, new in (edit or {}).items():
        assert old in text
        text = text.replace(old, new)
    pack.write_text(text, encoding="utf-8")
    return pack


def test_the_python_pack_gives_every_snippet_as_valid_python() -> None:
    pack = languages.load("python")
    assert set(pack.snippets) == set(languages.SNIPPETS) and set(pack.error_names) == set(languages.ERROR_NAMES)
    for name, snippet in languages.SNIPPETS.items():
        code = pack.code(name, **{param: SAMPLE_PARAMS[param] for param in snippet.params})
        assert "{{" not in code, name
        if name in NOT_PYTHON:
            with pytest.raises(SyntaxError):
                ast.parse(code)
        else:
            ast.parse(code)  # a SyntaxError names the snippet in the traceback
    assert sorted(p.name for p in pack.workspace.iterdir() if p.suffix == ".py") == [
        "conformance_a_first.py", "conformance_b_second.py", "conformance_c_broken.py",
        "conformance_d_after_broken.py", "conformance_helper.py",
    ]  # fmt: skip


def test_values_are_inserted_as_literals_and_code_as_written() -> None:
    pack = languages.load("python")
    assert pack.code("print_text", text='say "hi"\n') == 'print("say \\"hi\\"\\n")'
    assert pack.code("define", name="kept", value="it's") == 'kept = "it\'s"'
    assert pack.code("print_json", expression="1 + 1") == "print(__import__('json').dumps(1 + 1))"


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        ({'name = "python"': 'nom = "python"'}, "[language] needs a `name`"),
        ({'extension = ".py"': 'extension = "py"'}, "[language] needs an `extension`"),
        ({'workspace = "workspace"': 'workspace = "nowhere"'}, "[language] workspace: no folder"),
        ({'workspace = "workspace"\n': ""}, "[language] workspace: no folder"),
        (
            # A helper's parameter must be one of each including snippet's.
            {"import json, os, signal\ndef _stat": "import json, os, signal\nLIFE = {{life}}\ndef _stat"},
            "processes_alive: unknown parameters ['life']",
        ),
        ({"trivial = ": "trivially = "}, "[snippets] trivially: no such entry"),
        ({'print_text = "print({{text}})"': 'print_text = "print({{txt}})"'}, "unknown parameters ['txt']"),
        ({"{{> _proc}}\nalive": "{{> _procs}}\nalive"}, "no helper _procs to include"),
        ({'runtime_error = "ZeroDivisionError"': "runtime_error = 3"}, "[error_names] runtime_error: must be a string"),
        ({"[error_names]": "[error_names]\n[extras]"}, "unknown tables ['extras']"),
        ({"[snippets]": "[snippets"}, "pack.toml: "),  # not TOML
    ],
)
def test_a_broken_pack_is_refused_naming_the_file_and_the_problem(
    tmp_path: Path, edit: dict[str, str], problem: str
) -> None:
    pack = _copy_of_python(tmp_path / "pack", edit)
    with pytest.raises(languages.PackError) as raised:
        languages.load(str(pack))
    assert str(raised.value).startswith(str(pack)) and problem in str(raised.value)


def test_a_pack_the_kit_cannot_use_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "--language", "cobol", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 4
    assert "--language 'cobol' is neither a built-in language (python, javascript)" in done.stderr


def test_the_workspace_command_writes_the_packs_workspace(tmp_path: Path) -> None:
    pack = _copy_of_python(tmp_path / "pack")
    (pack.parent / "workspace" / "extra_file.py").write_text("EXTRA = 1\n", encoding="utf-8")
    assert kit_command(["workspace", str(tmp_path / "out"), "--language", str(pack)]) == 0
    assert (tmp_path / "out" / "extra_file.py").read_text(encoding="utf-8") == "EXTRA = 1\n"
    assert kit_command(["workspace", str(tmp_path / "bad"), "--language", "cobol"]) == 4


#: Snippets each needed by one requirement's tests only, and that requirement.
DROPPED = {"streams_exactly": "EXEC-2", "user_id": "SEC-1", "holder_and_abandoned": "CONC-3"}


def test_a_missing_snippet_leaves_exactly_the_requirements_that_need_it_not_run(tmp_path: Path) -> None:
    root = reachable_by_every_user(tmp_path)
    pack = _copy_of_python(root / "pack", drop=tuple(DROPPED))
    pack.parent.chmod(0o755)
    chosen = [*DROPPED.values(), "STATE-1", "EXEC-3", "SEC-3"]
    run = run_kit(["--language", str(pack), "--requirement", ",".join(chosen)], root / "results")
    outcomes = {rid: outcome for rid, outcome in run.outcomes().items() if rid in chosen}
    assert outcomes == {
        "EXEC-2": "not_run", "SEC-1": "not_run", "CONC-3": "not_run",
        "STATE-1": "passed", "EXEC-3": "passed", "SEC-3": "passed",
    }, run.output[-3000:]  # fmt: skip
    reasons = {r["id"]: r["reason"] for r in run.results["requirements"]}
    for snippet, rid in DROPPED.items():
        assert f"the python language pack has no snippet `{snippet}`" in reasons[rid]
    assert run.results["configuration"]["language"]["missing_snippets"] == sorted(DROPPED)
    assert run.results["verdict"] == "incomplete" and run.returncode == 2  # EXEC-2 is a MUST: never passed


def test_an_executor_of_another_language_is_not_certified_with_this_packs_code(tmp_path: Path) -> None:
    root = reachable_by_every_user(tmp_path)
    pack = _copy_of_python(root / "pack", {'name = "python"': 'name = "javascript"'})
    pack.parent.chmod(0o755)
    run = run_kit(["--language", str(pack), "--requirement", "STATE-1"], root / "results")
    assert run.results["verdict"] == "error" and run.returncode == 3
    assert "the executor declares language 'python' in GET /info, and the kit's code is javascript" in run.output


def test_the_docs_list_every_snippet() -> None:
    document = (ROOT / "docs" / "language-packs.md").read_text(encoding="utf-8")
    assert section(document, "snippets") == languages.markdown_table(), "run: nox -s docs"


#: A stand-in for xargs that starts a few processes, then stalls (as on a starved CPU, longer than
#: the old two-second settle window) before going on as xargs: a bomb still growing, far from full.
STALLING_XARGS = """#!/bin/sh
i=0; while [ $i -lt 10 ]; do sleep 30 & i=$((i + 1)); done
sleep 3
exec /usr/bin/xargs "$@"
"""
#: The per-user process limit the bomb's user runs under in the test: far below the bomb's count.
BOMB_LIMIT = 120


@pytest.mark.skipif(os.geteuid() != 0, reason="a process limit binds only a user who is not root")
@pytest.mark.parametrize("language", ["python", "javascript"])
def test_the_fork_bomb_counts_as_made_once_a_limit_stops_it_not_when_it_stalls(tmp_path: Path, language: str) -> None:
    """ISO-10 judges a table held full: the snippet's bomb is made once a process of its own
    cannot start (or all `count` run), whatever pauses its growth had (CI: a broken executor
    without a process limit passed by image, its table not yet full when the restart came)."""
    if language == "javascript" and shutil.which("node") is None:
        pytest.fail("Node.js is not installed: .ci/run installs it")
    users = claim_kernel_users("auto", range(61600, 61700))
    assert users is not None
    user = users.first
    root = reachable_by_every_user(tmp_path)
    (root / "xargs").write_text(STALLING_XARGS, encoding="utf-8")
    (root / "xargs").chmod(0o755)
    code = languages.load(language).code("fork_bomb", count=400, life=30, within=20)
    command = [sys.executable, "-S", "-c", code] if language == "python" else ["node", "-e", code]

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NPROC, (BOMB_LIMIT, BOMB_LIMIT))

    try:
        done = subprocess.run(
            command, user=user.uid, group=user.gid, extra_groups=[], cwd="/", preexec_fn=limited,
            env={"PATH": f"{root}:/usr/bin:/bin"}, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        bomb = json.loads(done.stdout.strip().splitlines()[-1])
        assert bomb["full"] is True, bomb
        assert BOMB_LIMIT - 20 <= bomb["made"] + len(bomb["probes"]) < BOMB_LIMIT, bomb  # the probes hold theirs
    finally:
        sweep(user, folders=[])
        users.release()
