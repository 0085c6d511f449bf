"""``executor-conformance bench``: the options, the run, bench.json and bench.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..options import KitParser, OptionError, add_target_options, spec_from
from ..results import Exit
from ..targets import TargetError, Workspace
from .measure import BenchError, BenchSettings
from .report import to_markdown
from .run import run_bench

__all__ = [
    "main",
]


def main(argv: list[str]) -> int:
    parser = KitParser(prog="executor-conformance bench", description=__doc__.splitlines()[0])
    add_target_options(parser.add_argument)
    defaults = BenchSettings()
    parser.add_argument("--repeats", type=int, default=defaults.repeats, help="runs per figure (median, min, max)")
    parser.add_argument("--calls", type=int, default=defaults.calls, help="1+1 calls per latency run")
    parser.add_argument("--clients", type=int, default=defaults.clients, help="concurrent clients for throughput")
    parser.add_argument("--no-floor", action="store_true", help="do not measure the bare jupyter_client floor")
    parser.add_argument(
        "--bench-workspace",
        type=Workspace,
        choices=(Workspace.EMPTY, Workspace.KIT),
        default=defaults.workspace,
        help="what the executor loads at start: nothing (default: like the floor) or the kit's sample workspace",
    )
    parser.add_argument(
        "--report-dir", "--out", dest="out", default="results/bench", help="where bench.json and bench.md go"
    )
    parser.add_argument("--check-goals", action="store_true", help="exit 1 unless every goal is met")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.calls < 2 or args.clients < 1:
        parser.error("--repeats must be >= 1, --calls >= 2 and --clients >= 1")
    settings = BenchSettings(
        repeats=args.repeats, calls=args.calls, clients=args.clients, workspace=args.bench_workspace
    )

    def option(name: str) -> Any:
        return getattr(args, name)

    try:
        spec = spec_from(option)
        if not args.no_workspace:
            # The kit's workspace sleeps on purpose (READY-4); the floor loads nothing either.
            spec = spec.with_workspace(settings.workspace)
        bench = run_bench(spec, settings, with_floor=not args.no_floor)
    except OptionError as exc:
        parser.error(str(exc))
    except (TargetError, BenchError) as exc:
        print(f"executor-conformance bench: {exc}", file=sys.stderr)
        return Exit.ERROR
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(bench, indent=2) + "\n", encoding="utf-8")
    table = to_markdown(bench)
    (out / "bench.md").write_text(table, encoding="utf-8")
    print(table)
    print(f"    json: {out / 'bench.json'}\nmarkdown: {out / 'bench.md'}")
    missed = [goal for goal in bench["goals"] if goal["met"] is False]
    return 1 if args.check_goals and missed else 0
