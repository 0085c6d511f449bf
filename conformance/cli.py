"""``executor-conformance``: the console front door of the kit.

    executor-conformance [run] [--image IMG | --url URL | --command CMD] [options]
    executor-conformance catalogue [--check docs/contract.md] [--write docs/contract.md]
    executor-conformance workspace DIR
    executor-conformance bench [--image IMG | --url URL | --command CMD] [--out DIR]

``run`` (the default) runs the suite through pytest with the kit's own pytest settings, so
that the project it is run from does not change how the kit behaves. Its exit code is the
verdict's: 0 conformant, 1 non-conformant, 2 incomplete, 3 the executor could not be tested
(error), 4 a usage error (found before anything runs), 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from importlib import resources
from pathlib import Path

from . import __version__, catalogue
from .targets import export_workspace

__all__ = ["main"]

#: Short spellings the console command accepts for the plugin's options.
ALIASES = {"--command": "--executor-command", "--strict": "--conformance-strict", "--env": "--executor-env"}

_MARK_START = "<!-- catalogue:start -->"
_MARK_END = "<!-- catalogue:end -->"


def _plugin_registered() -> bool:
    return any(ep.value == "conformance.plugin" for ep in importlib.metadata.entry_points(group="pytest11"))


def _alias(arg: str) -> str:
    """``arg`` with a short spelling of an option (``--command``, ``--command=...``) made the plugin's."""
    name, sep, value = arg.partition("=")
    return f"{ALIASES.get(name, name)}{sep}{value}"


def run(argv: list[str]) -> int:
    """Run the suite with ``argv`` (the plugin's options; see ``--help``)."""
    import pytest

    suite = resources.files("conformance") / "suite"
    args = [_alias(arg) for arg in argv]
    pytest_args = [
        str(suite),
        "-c",
        str(suite / "pytest.ini"),
        "--rootdir",
        str(suite),
        "-p",
        "no:cacheprovider",
        *([] if _plugin_registered() else ["-p", "conformance.plugin"]),
        *args,
    ]
    code = pytest.main(pytest_args)
    return int(code)


def with_table(document: str) -> str:
    """``document`` with its requirement table replaced by the one generated from the catalogue."""
    if _MARK_START not in document or _MARK_END not in document:
        raise ValueError(f"the document has no {_MARK_START} ... {_MARK_END} section")
    head, rest = document.split(_MARK_START, 1)
    _, tail = rest.split(_MARK_END, 1)
    return f"{head}{_MARK_START}\n{catalogue.markdown_table()}{_MARK_END}{tail}"


def catalogue_command(args: argparse.Namespace) -> int:
    if args.write:
        path = Path(args.write)
        path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"wrote the requirement table into {path}")
        return 0
    if args.check:
        path = Path(args.check)
        text = path.read_text(encoding="utf-8")
        if with_table(text) != text:
            print(f"{path}: the requirement table differs from the catalogue")
            print(f"run: executor-conformance catalogue --write {path}")
            return 1
        print(f"{path}: the requirement table matches the catalogue ({len(catalogue.REQUIREMENTS)} requirements)")
        return 0
    sys.stdout.write(catalogue.markdown_table())
    return 0


def compare_command(args: argparse.Namespace) -> int:
    from .results import unstable_requirements

    reports = [json.loads(Path(path).read_text(encoding="utf-8")) for path in args.results]
    unstable = unstable_requirements(reports)
    verdicts = sorted({report["verdict"] for report in reports})
    print(f"{len(reports)} runs; verdicts: {', '.join(verdicts)}")
    for rid, seen in unstable.items():
        print(f"UNSTABLE {rid}: {', '.join(seen)}")
    if not unstable:
        print("every requirement had the same outcome in every run")
    return 1 if unstable or len(verdicts) > 1 else 0


def workspace_command(args: argparse.Namespace) -> int:
    folder = export_workspace(Path(args.folder))
    print(f"wrote the kit's sample workspace to {folder}")
    print("start the executor with it as WORKSPACE_FOLDER (read-only), then pass --workspace-mounted")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"bench", "catalogue", "workspace", "compare"}
    if argv[:1] == ["--version"]:
        print(f"executor-conformance {__version__} (contract {catalogue.CONTRACT_VERSION})")
        return 0
    if argv[:1] == ["compose"]:
        print("executor-conformance compose is now the deployment's own: executor-pool compose", file=sys.stderr)
        return 2
    if not argv or argv[0] not in commands:
        if argv and argv[0] == "run":
            argv = argv[1:]
        if any(a in ("-h", "--help") for a in argv):
            print(__doc__)
        return run(argv)
    parser = argparse.ArgumentParser(prog="executor-conformance")
    sub = parser.add_subparsers(dest="command", required=True)
    cat = sub.add_parser("catalogue", help="print the requirement table, or check/write it in a document")
    cat.add_argument("--check", metavar="FILE")
    cat.add_argument("--write", metavar="FILE")
    cat.set_defaults(handler=catalogue_command)
    cmp = sub.add_parser("compare", help="check that several runs gave every requirement the same outcome")
    cmp.add_argument("results", nargs="+", help="results.json files")
    cmp.set_defaults(handler=compare_command)
    ws = sub.add_parser("workspace", help="export the kit's sample workspace, for executors started by hand")
    ws.add_argument("folder")
    ws.set_defaults(handler=workspace_command)
    if argv[0] == "bench":
        from . import bench

        return bench.main(argv[1:])
    parsed = parser.parse_args(argv)
    return int(parsed.handler(parsed))


if __name__ == "__main__":
    sys.exit(main())
