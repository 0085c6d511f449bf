"""``executor-conformance``: the console front door of the kit.

    executor-conformance [run] [--image IMG | --url URL | --command CMD] [options]
    executor-conformance catalogue [--check docs/contract.md] [--write docs/contract.md]
    executor-conformance workspace DIR
    executor-conformance bench [--image IMG | --url URL | --command CMD] [--out DIR]
    executor-conformance pool --manager URL --token TOKEN [options]

``run`` (the default) runs the suite through pytest with the kit's own pytest settings, so
that the project it is run from does not change how the kit behaves. Its exit code is the
verdict's: 0 conformant, 1 non-conformant, 2 incomplete, 3 the executor could not be tested
(error), 4 a usage error (found before anything runs), 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from . import __version__, catalogue, languages
from .options import REPORTS, RUN_OPTIONS, SELECTION, TARGET_OPTIONS, KitParser
from .results import Exit
from .targets import export_workspace

__all__ = ["main"]

_MARK_START = "<!-- catalogue:start -->"
_MARK_END = "<!-- catalogue:end -->"

EPILOG = """other commands:
  executor-conformance catalogue [--check FILE | --write FILE]   the requirement table
  executor-conformance workspace DIR [--language L]   the kit's sample workspace, for an executor started by hand
  executor-conformance bench [target options] [--report-dir DIR]   speed and memory against a bare kernel
  executor-conformance compare RESULTS...   whether several runs gave every requirement the same outcome
  executor-conformance pool --manager URL --token TOKEN   a running pool against docs/pool-contract.md

pytest's own arguments go after --:  executor-conformance --image IMG -- -x --tb=long

exit codes:
""" + "".join(f"  {code.value:<4} {code.meaning}\n" for code in Exit)


def run_parser() -> KitParser:
    """The options of a certification, grouped; each has its short name shown and its prefixed
    (pytest plugin) name accepted too."""
    parser = KitParser(
        prog="executor-conformance",
        usage="executor-conformance [run] [--image IMAGE | --url URL | --command CMD] [options] [-- PYTEST-ARGS]",
        description="Certify an executor against the contract, requirement by requirement.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    groups: dict[str, Any] = {}
    for option in [*TARGET_OPTIONS, *RUN_OPTIONS]:
        group = groups.get(option.group) or groups.setdefault(option.group, parser.add_argument_group(option.group))
        group.add_argument(*option.flags[1:], **option.kwargs)
        hidden = {key: value for key, value in option.kwargs.items() if key != "help"}
        group.add_argument(option.canonical, help=argparse.SUPPRESS, **hidden)
    groups[SELECTION].add_argument("-k", dest="keyword", metavar="EXPR", help="pytest's selection by test name")
    groups[SELECTION].add_argument(
        "--list", action="store_true", help="list the requirements that would run (a table), and run nothing"
    )
    groups[SELECTION].add_argument("--json", action="store_true", help="with --list: as JSON")
    groups[REPORTS].add_argument("-q", "--quiet", action="count", default=0, help="less output")
    groups[REPORTS].add_argument("-v", "--verbose", action="count", default=0, help="more output")
    return parser


def pytest_arguments(args: argparse.Namespace) -> list[str]:
    """The parsed options, in the plugin's (prefixed) names."""
    out: list[str] = []
    for option in [*TARGET_OPTIONS, *RUN_OPTIONS]:
        value, action = getattr(args, option.kwargs["dest"]), option.kwargs.get("action")
        if action == "store_true":
            out += [option.canonical] if value else []
        elif action == "append":
            out += [item for entry in value for item in (option.canonical, str(entry))]
        elif value != option.kwargs.get("default"):
            out += [option.canonical, str(value)]
    out += ["-k", args.keyword] if args.keyword else []
    return [*out, *["-q"] * args.quiet, *["-v"] * args.verbose]


def list_requirements(parser: KitParser, args: argparse.Namespace) -> int:
    """``--list``: the requirements ``--profile``, ``--requirement`` and ``--skip-requirement`` leave,
    as a table or JSON."""
    try:
        selection = catalogue.Selection.of(args.requirement, args.skip_requirement, args.profile)
    except ValueError as exc:
        parser.error(str(exc))
    ids = [rid for rid in catalogue.REQUIREMENTS if selection.keeps([rid])]
    if not args.json:
        sys.stdout.write(catalogue.markdown_table(ids))
        return 0
    fields = ("id", "level", "area", "title", "feature", "profiles")
    rows = [{name: getattr(catalogue.REQUIREMENTS[rid], name) for name in fields} for rid in ids]
    print(json.dumps(rows, indent=2, default=str))
    return 0


def _version() -> str:
    return f"executor-conformance {__version__} (contract {catalogue.CONTRACT_VERSION})"


def _plugin_registered() -> bool:
    return any(ep.value == "conformance.plugin" for ep in importlib.metadata.entry_points(group="pytest11"))


def run(argv: list[str]) -> int:
    """Certify: the kit's options (``--help``), then pytest's own after ``--``."""
    import pytest

    cut = argv.index("--") if "--" in argv else len(argv)
    parser = run_parser()
    args, extra = parser.parse_args(argv[:cut]), argv[cut + 1 :]
    if args.list:
        return list_requirements(parser, args)
    suite = resources.files("conformance") / "suite"
    pytest_args = [
        str(suite),
        "-c",
        str(suite / "pytest.ini"),
        "--rootdir",
        str(suite),
        "-p",
        "no:cacheprovider",
        *([] if _plugin_registered() else ["-p", "conformance.plugin"]),
        *pytest_arguments(args),
        *extra,
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
        count = len(catalogue.of_profile(catalogue.Profile.FULL))
        print(f"{path}: the requirement table matches the catalogue ({count} requirements)")
        return 0
    sys.stdout.write(catalogue.markdown_table())
    return 0


def compare_command(args: argparse.Namespace) -> int:
    from .results import unstable_requirements, upgraded

    reports = [upgraded(json.loads(Path(path).read_text(encoding="utf-8"))) for path in args.results]
    unstable = unstable_requirements(reports)
    verdicts = sorted({report["verdict"] for report in reports})
    print(f"{len(reports)} runs; verdicts: {', '.join(verdicts)}")
    for rid, seen in unstable.items():
        print(f"UNSTABLE {rid}: {', '.join(seen)}")
    if not unstable:
        print("every requirement had the same outcome in every run")
    return 1 if unstable or len(verdicts) > 1 else 0


def workspace_command(args: argparse.Namespace) -> int:
    try:
        pack = languages.load(args.language)
    except languages.PackError as exc:
        print(f"executor-conformance workspace: --language {exc}", file=sys.stderr)
        return Exit.USAGE
    folder = export_workspace(Path(args.folder), pack.workspace)
    print(f"wrote the kit's sample workspace ({pack.name}) to {folder}")
    print("start the executor with it as WORKSPACE_FOLDER (read-only), then pass --workspace-mounted")
    return 0


def pool_command(argv: list[str]) -> int:
    """``executor-conformance pool --manager URL --token TOKEN [options]``: a certification of the
    pool contract's profile, through the manager (the kit's other options apply: reports, selection)."""
    parser = KitParser(
        prog="executor-conformance pool",
        usage="executor-conformance pool --manager URL (--token TOKEN | --token-file FILE) [options] [-- PYTEST-ARGS]",
        description="Certify a running pool (its manager and executors) against docs/pool-contract.md.",
        epilog="Any other option is the certification's own (see executor-conformance --help): --report-dir, "
        "--requirement, --skip-requirement, --pool-type, --language, --strict.",
    )
    parser.add_argument("--manager", required=True, metavar="URL", help="the manager's base URL")
    token = parser.add_mutually_exclusive_group(required=True)
    token.add_argument(
        "--token", metavar="TOKEN", help="the manager's token (the operator's); one that begins with - as --token=TOKEN"
    )
    token.add_argument("--token-file", metavar="FILE", help="a file holding the manager's token")
    cut = argv.index("--") if "--" in argv else len(argv)
    args, rest = parser.parse_known_args(argv[:cut])
    secret = args.token
    if args.token_file:
        try:
            secret = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            parser.error(f"--token-file {args.token_file}: {exc.strerror or exc}")
    if not secret:
        parser.error("the manager's token is empty")
    pool = ["--url", args.manager, "--header", f"Authorization: Bearer {secret}", "--profile", "pool"]
    return run([*pool, *rest, *argv[cut:]])


def main(argv: list[str] | None = None) -> int:
    """The command; output cut short by its reader (``--list --json | head``) ends it quietly."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except BrokenPipeError:
        # Python would complain again flushing stdout at exit: point it at /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return Exit.CONFORMANT if "--list" in argv else Exit.ERROR  # a list's reader had what it wanted


def _main(argv: list[str]) -> int:
    commands = {"bench", "catalogue", "workspace", "compare"}
    if argv[:1] == ["compose"]:
        print("executor-conformance compose is now the deployment's own: executor-pool compose", file=sys.stderr)
        return Exit.USAGE
    if argv[:1] == ["pool"]:
        return pool_command(argv[1:])
    if not argv or argv[0] not in commands:
        return run(argv[1:] if argv[:1] == ["run"] else argv)
    parser = KitParser(prog="executor-conformance")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=KitParser)
    cat = sub.add_parser("catalogue", help="print the requirement table, or check/write it in a document")
    cat.add_argument("--check", metavar="FILE")
    cat.add_argument("--write", metavar="FILE")
    cat.set_defaults(handler=catalogue_command)
    cmp = sub.add_parser("compare", help="check that several runs gave every requirement the same outcome")
    cmp.add_argument("results", nargs="+", help="results.json files")
    cmp.set_defaults(handler=compare_command)
    ws = sub.add_parser("workspace", help="export the kit's sample workspace, for executors started by hand")
    ws.add_argument("folder")
    ws.add_argument("--language", default=languages.DEFAULT, metavar="NAME|FILE", help="the pack whose workspace")
    ws.set_defaults(handler=workspace_command)
    if argv[0] == "bench":
        from . import bench

        return bench.main(argv[1:])
    parsed = parser.parse_args(argv)
    return int(parsed.handler(parsed))


if __name__ == "__main__":
    sys.exit(main())
