"""Language packs: the code every scenario sends, written in the session's language.

The suite says what a scenario's code must do (print a line, end with an expression, never
return, ignore interrupts, ...); a pack says how, in one language, as data: a TOML file of
snippets, plus a sample workspace in that language. ``SNIPPETS`` below is the list of every
snippet, what it must do and its parameters: the format's reference (docs/language-packs.md).

A snippet's ``{{name}}`` is replaced by its parameter: a value as its JSON text (a string, a
number, a list), valid as a literal in Python and JavaScript alike; a parameter that is code
(``print_json``'s expression, a variable's name) as written. ``{{> _helper}}`` is replaced by the
pack's entry ``_helper``: entries whose names start with ``_`` are shared text, not snippets. A
pack may leave snippets out: the tests that need one are then *not run*, saying which snippet was
missing, never passed.

This module must never import pytest or anything of the executor.
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "BUILT_IN",
    "DEFAULT",
    "ERROR_NAMES",
    "SNIPPETS",
    "LanguagePack",
    "MissingSnippetError",
    "PackError",
    "Snippet",
    "load",
    "markdown_table",
]

#: The packs that ship with the kit, by name, and the one used when none is chosen.
BUILT_IN = ("python", "javascript")
DEFAULT = "python"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_INCLUDE = re.compile(r"\{\{>\s*(_[A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class Snippet:
    """What a snippet's code must do, and the parameters it is given."""

    does: str
    params: tuple[str, ...] = ()
    #: The parameters that are code, inserted as written (the others are values, as JSON).
    code: tuple[str, ...] = ()


def _s(does: str, *params: str) -> Snippet:
    return Snippet(does, params)


def _with_code(does: str, *code: str) -> Snippet:
    return Snippet(does, code, code)


#: Every snippet a pack may give, by name. The suite asks for no other.
SNIPPETS: dict[str, Snippet] = {
    # -- the basics, used by many tests
    "trivial": _s("does nothing and prints nothing (the kit's check that a session is usable)"),
    "print_json": _with_code("prints the JSON text of the value of the code `expression`, on one line", "expression"),
    "print_text": _s("prints `text` and a newline to stdout", "text"),
    "value_of_text": _s("an expression whose value is `text`, returned as the result (nothing printed)", "text"),
    "print_sum": _s("prints the sum of the integers `a` and `b`, and a newline, to stdout", "a", "b"),
    "define": Snippet("binds the session variable `name` (code) to the string `value`", ("name", "value"), ("name",)),
    "print_variable": _with_code("prints the session variable `name` and a newline to stdout", "name"),
    "variable_value": _with_code("an expression: the value of the session variable `name`", "name"),
    "read_undefined": _with_code("reads the session variable `name` (an error if it is not defined)", "name"),
    # -- timing
    "sleeps_forever": _s("sleeps 600 s, interruptibly (SIGINT ends it with an error)"),
    "sleep_then_value": _s("sleeps `seconds` s, then ends with an expression", "seconds"),
    "print_then_sleep_forever": _s("prints `text` and a newline, flushed, then sleeps 600 s", "text"),
    "sleep_then_print": _s("sleeps `seconds` s, then prints `text` and a newline", "seconds", "text"),
    "ignores_interrupts": _s(
        "runs for ever, and the session's interrupt (SIGINT) does not stop it: Python ignores SIGINT in a "
        "loop; where running code cannot ignore it (JavaScript), a blocking call it does not reach"
    ),
    "records_start_then_sleeps": _s(
        "binds `conformance_holder_started` to the time now (seconds since the epoch), then sleeps `seconds` s",
        "seconds",
    ),
    "records_time": _s("binds `conformance_abandoned_ran` to the time now (seconds since the epoch)"),
    "reset_abandoned": _s("binds `conformance_abandoned_ran` to null (Python's None)"),
    "holder_and_abandoned": _s("an expression: the list [conformance_holder_started, conformance_abandoned_ran]"),
    "print_lines_slowly": _s(
        "prints `count` lines 'PREFIX0'..'PREFIX<count-1>' (`prefix` + the number), flushed, 20 ms apart",
        "prefix",
        "count",
    ),
    # -- outputs
    "expression_six_times_seven": _s("an expression whose value is 42 (no output but the result)"),
    "one_plus_one": _s("an expression whose value is 2, shown as `2`"),
    "stdout_and_stderr": _s("prints 'out' and a newline to stdout, then 'err' and a newline to stderr"),
    "streams_exactly": _s(
        "writes 'to stdout\\n' to stdout, 'to stderr\\n' to stderr, then 'no newline' to stdout, flushed"
    ),
    "raises_sample_error": _s("raises an exception whose message is 'sample error'"),
    "syntax_error": _s("source that does not parse"),
    "display_html": _s("displays rich output: an HTML bundle '<b>bold</b>' (display_data)"),
    "display_html_and_png": _s("displays an HTML bundle '<i>rich</i>' and a PNG image (display_data)"),
    "empty": _s("empty source, which must run with no outputs"),
    "comment_only": _s("a single comment line"),
    "blank_and_comments": _s("blank lines and two comment lines"),
    "lone_surrogate_stdout": _s("prints 'a', U+D800 (a lone surrogate) and 'b', and a newline, to stdout"),
    "lone_surrogate_stderr": _s("writes 'c', U+DFFF and 'd' and a newline to stderr"),
    "lone_surrogate_error": _s("raises an error whose message is 'e', U+DC80, 'f'"),
    "writes_bytes": _s("writes `count` copies of the one-character `char` to stdout, flushed", "char", "count"),
    "floods_stdout": _s("writes 50 MB to stdout, a million characters at a time"),
    "raises_huge_message": _s(
        "raises an error whose message is `count` copies of the one-character `char`", "char", "count"
    ),
    "huge_value": _s(
        "an expression whose value is a string of `count` copies of `char`, returned as the result", "char", "count"
    ),
    "displays_huge": _s(
        "shows a small rich output (a display of a `text/plain` only), then one carrying `count` copies of "
        "`char` beside it, in its metadata or in another MIME type; without rich output, prints a line instead",
        "char",
        "count",
    ),
    # -- errors
    "raises_in_a_function": _s("defines a function that raises an error whose message is 'boom 17', and calls it"),
    "invalid_assignment": _s("source that does not parse: an assignment with two equals signs"),
    "runtime_error": _s("a runtime error of another kind than raises_in_a_function's"),
    # -- state
    "defines_state": _s(
        "binds state_value = 41, a function state_function(x) returning x + 1, and some module as state_module"
    ),
    "uses_state": _s("an expression: [state_function(state_value), a string the module gives ('1/2')]"),
    # -- the sample workspace (mounted code)
    "load_order": _s("an expression: the workspace's CONFORMANCE_LOAD_ORDER, or null when it is not defined"),
    "workspace_loaded": _s("an expression: whether CONFORMANCE_LOAD_ORDER is defined in the session (a boolean)"),
    "workspace_names": _s(
        "an expression: ['list', true] when CONFORMANCE_LOAD_ORDER is a list and workspace_folder a function"
    ),
    "helper_value": _s("an expression: the workspace's CONFORMANCE_HELPER_VALUE (42), or null"),
    "loaded_at": _s("an expression: the workspace's CONFORMANCE_LOADED_AT (seconds since the epoch)"),
    "overwrite_load_order": _s("binds CONFORMANCE_LOAD_ORDER to the string 'overwritten'"),
    # -- crashes and security
    "exits_the_process": _s("ends the session's own process at once (exit code 1)"),
    "kills_itself": _s("sends SIGKILL to the session's own process"),
    "memory_bomb": _s("allocates 64 MB blocks until memory runs out; if that is an error, lets them go"),
    "user_id": _s("an expression: the effective user id of the session's process"),
    "kill_parent": _s("sends SIGKILL to its parent process; prints 'signal sent', or 'refused: ' and why"),
    "write_workspace": _s(
        "writes a file into the workspace folder (found by conformance_helper's file); prints 'written', "
        "'refused: ' and why, or 'not found'"
    ),
    # -- isolation between sessions (ISO-1 to ISO-6); each prints one JSON value on its last line
    "start_detached": _s(
        "starts a detached process (double fork, new session) of each of `kinds` that lives `life` s: "
        "'heartbeat' (plain), 'stubborn' (ignores SIGTERM, SIGINT and SIGHUP; it ends the stopped one when its "
        "life is over), 'stopped' (catches SIGTERM, then is stopped with SIGSTOP) and, where the language can "
        "make one, 'headless' (its main thread has exited while another runs); prints "
        '{"detached": [[pid, start time, kind], ...], "reachable": [[pid, start time, command], ...]}: the '
        "processes user code can signal in the tree of `scope` (0: every process)",
        "kinds",
        "scope",
        "life",
    ),
    "start_children": _s(
        "starts two child processes of the session that live `life` s, one that ignores SIGTERM, SIGINT and "
        "SIGHUP and one that catches SIGTERM and is then stopped with SIGSTOP; prints the JSON list of "
        "[pid, start time, kind] ('stubborn', 'stopped')",
        "life",
    ),
    "processes_alive": _s(
        "prints the JSON list of those of `processes` ([pid, start time, command]) alive: with a thread that is "
        "not a zombie, stopped ones included",
        "processes",
    ),
    "processes_present": _s(
        "prints the JSON list of those of `processes` ([pid, start time, command]) that still exist in any "
        "state, zombies included",
        "processes",
    ),
    "fork_bomb": _s(
        "starts, in a new session, `count` processes as fast as it can, each living `life` s, trying again while "
        "the process table or a limit is full; waits until all run or a process of its own cannot start (the "
        "table or a limit is full: each probe started outside the session lives `life` s too, holding its "
        'slot), `within` s at most; prints {"session": the session id, "made": how many are running, "full": '
        'whether a process of its own could not start, "probes": [pid, start time, command] of each probe still '
        "running}",
        "count",
        "life",
        "within",
    ),
    "session_alive": _s(
        "prints the JSON list of [pid, start time, command] of the processes of session `session` still alive",
        "session",
    ),
    "orphan_zombies": _s(
        "has `count` processes each start a child that exits at once, then end without reaping it; prints "
        '{"made": how many, "zombies": [[pid, start time, "zombie"], ...] (those not reaped yet), "reapers": '
        "the PIDs they went to}",
        "count",
    ),
    "file_marks": _s(
        "writes a file named with `token` in every folder user code can write to (temp folders, HOME, the "
        "working directory, import paths, every world-writable folder three levels below / at most), sparing "
        "the workspace and `persistent`; prints the JSON list of paths",
        "token",
        "persistent",
    ),
    "deep_tree": _s(
        "makes, in the temporary folder, a folder named with `token` holding a tree `depth` folders deep "
        "(made folder by folder: its whole path is longer than PATH_MAX) and beside it a folder of `files` "
        "empty files; prints the JSON list of the two folders' paths",
        "token",
        "depth",
        "files",
    ),
    "files_left": _s("prints the JSON list of those of `paths` that exist, removing each it can", "paths"),
    "plant": _s(
        "plants start-up code in every writable import path and an environment variable, each setting the "
        "marker of `token`; prints the JSON list of files planted",
        "token",
    ),
    "check_planted": _s(
        'prints {"session": bool, "new_interpreter": bool}: whether the marker of `token` is set here, and '
        "in a new interpreter this session starts",
        "token",
    ),
    "background_talkers": _s(
        "starts a thread and a detached process that print 'conformance-leak-' + `token` every 50 ms for "
        "`life` s, then returns",
        "token",
        "life",
    ),
    "ipc_objects": _s(
        "creates, readable and writable by every user, what kernel objects it can that outlive their "
        "processes: a SysV shared memory segment, message queue and semaphore set, and a POSIX message queue "
        "named for `token`; prints the JSON list of [kind, id or name] ('shm', 'msg', 'sem', 'mqueue')",
        "token",
    ),
    "ipc_left": _s("prints the JSON list of those of `objects` ([kind, id or name]) that still exist", "objects"),
    "signal_everything": _s(
        "sends the signal `signal_name` to every process it can reach in the tree of `scope` (0: unknown, "
        "then refusing when root or in the PID namespace `kit_namespace`); prints "
        '{"refused": null or why, "sent": [[pid, command], ...]}',
        "signal_name",
        "scope",
        "kit_namespace",
    ),
    "write_outside_protocol": _s(
        "writes a line holding 'conformance-log-' + `token` straight to descriptors 1 and 2, and has a process "
        "it starts, with those descriptors inherited, do the same",
        "token",
    ),
    "session_environment": _s("prints the JSON object of the environment's values of `names` (null: unset)", "names"),
    # -- the pool contract: what user code in a session of a pool sees and reaches ----------------
    "network_view": _s(
        'reads /proc alone and prints {"addresses": the session\'s own addresses, loopback aside, "listening": '
        'the TCP ports listened on, "served": [[port, peer address], ...] of the connections to those ports from '
        'other than loopback, "routes": [[interface, destination, gateway], ...], "default_route": whether a '
        "route leads anywhere (IPv4 or IPv6)}",
    ),
    "connects_to": _s(
        "tries a TCP connection to each [host, port] of `targets` at once, each for `seconds` s at most, and to a "
        'listener of its own at its own address (the control); prints {"control": bool, "reached": [[host, port, '
        "bool], ...]}",
        "targets",
        "seconds",
    ),
    "http_status_later": Snippet(
        "binds the session variable `name` (code; `name_text`: the same name as a string) to 'pending', then "
        'POSTs {"code": ""} to `url` with no Authorization header from a thread of its own (so that the call '
        "can be answered once this code has returned), and binds `name` to the HTTP status, 'no answer' "
        "(connected, and no answer in `seconds` s) or null (no connection, or no HTTP answer)",
        ("name", "name_text", "url", "seconds"),
        ("name",),
    ),
}

#: What the language calls the errors some snippets raise, as the error items' ``ename``.
ERROR_NAMES = {
    "raises_in_a_function": "the error raises_in_a_function raises",
    "invalid_assignment": "a syntax error",
    "runtime_error": "runtime_error's error",
    "read_undefined": "reading an undefined variable",
}


def markdown_table() -> str:
    """docs/language-packs.md's reference: every snippet, its parameters and what it must do."""
    lines = ["| Snippet | Parameters | What the code must do |", "| --- | --- | --- |"]
    for name, snippet in SNIPPETS.items():
        params = ", ".join(f"`{p}` (code)" if p in snippet.code else f"`{p}`" for p in snippet.params) or "-"
        does = snippet.does.replace("|", "\\|")
        lines.append(f"| `{name}` | {params} | {does} |")
    lines += ["", "| Error name | The error it names |", "| --- | --- |"]
    lines += [f"| `{name}` | {what} |" for name, what in ERROR_NAMES.items()]
    return "\n".join(lines) + "\n"


class PackError(ValueError):
    """A language pack that cannot be used; the message names the file and what is wrong."""


class MissingSnippetError(LookupError):
    """The pack has no snippet for what a test needs: that test is not run, never passed."""


@dataclass(frozen=True)
class LanguagePack:
    """One language's snippets, error names and sample workspace."""

    name: str
    source: str
    #: The extension of the workspace's files, which the executor loads at start-up.
    extension: str
    #: The sample workspace (CODE-1 to CODE-5, READY-4, RESTART-3), in this language.
    workspace: Path
    snippets: dict[str, str] = field(default_factory=dict)
    error_names: dict[str, str] = field(default_factory=dict)

    def code(self, snippet_name: str, /, **params: Any) -> str:
        """Snippet ``snippet_name`` with its parameters; MissingSnippetError if the pack has none."""
        if snippet_name not in SNIPPETS:
            raise KeyError(f"the suite asked for snippet {snippet_name!r}, which SNIPPETS does not define")
        if snippet_name not in self.snippets:
            does = SNIPPETS[snippet_name].does
            raise MissingSnippetError(f"the {self.name} language pack has no snippet `{snippet_name}` ({does})")
        snippet = SNIPPETS[snippet_name]

        def value(match: re.Match[str]) -> str:
            param = params[match.group(1)]
            return str(param) if match.group(1) in snippet.code else json.dumps(param, ensure_ascii=False)

        return _PLACEHOLDER.sub(value, self.snippets[snippet_name])

    def error_name(self, snippet: str) -> str:
        """The ``ename`` of the error ``snippet`` raises; MissingSnippetError if the pack does not say."""
        if snippet not in self.error_names:
            raise MissingSnippetError(
                f"the {self.name} language pack does not name {ERROR_NAMES[snippet]} (error_names.{snippet})"
            )
        return self.error_names[snippet]

    def describe(self) -> dict[str, Any]:
        """For the reports: which pack, and what it leaves out."""
        return {
            "name": self.name,
            "source": self.source,
            "extension": self.extension,
            "missing_snippets": sorted(set(SNIPPETS) - set(self.snippets)),
        }


def load(name_or_path: str) -> LanguagePack:
    """A built-in pack by name (``python``), or a pack file by path; PackError saying what is wrong."""
    if name_or_path in BUILT_IN:
        return _built_in(name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        raise PackError(f"{name_or_path!r} is neither a built-in language ({', '.join(BUILT_IN)}) nor a pack file")
    return _read(path)


@functools.cache
def _built_in(name: str) -> LanguagePack:
    """A built-in pack, read and checked once per process (every client without a pack of its own asks)."""
    return _read(Path(str(resources.files("conformance") / "languages" / name / "pack.toml")))


def _read(path: Path) -> LanguagePack:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PackError(f"{path}: {exc}") from None
    return _validated(data, path)


def _validated(data: dict[str, Any], path: Path) -> LanguagePack:
    problems = []
    language = data.get("language")
    if not isinstance(language, dict) or not isinstance(language.get("name"), str):
        problems.append("[language] needs a `name`")
        language = {}
    extension = language.get("extension", "")
    if not isinstance(extension, str) or not extension.startswith("."):
        problems.append('[language] needs an `extension` such as ".py" (the workspace\'s files)')
    snippets = data.get("snippets", {})
    error_names = data.get("error_names", {})
    for table, known, entries in (("snippets", SNIPPETS, snippets), ("error_names", ERROR_NAMES, error_names)):
        if not isinstance(entries, dict):
            problems.append(f"[{table}] must be a table")
            continue
        for name, text in entries.items():
            if table == "snippets" and name.startswith("_"):
                if not isinstance(text, str):
                    problems.append(f"[snippets] {name}: must be a string")
                continue
            if name not in known:
                problems.append(f"[{table}] {name}: no such entry (known: {', '.join(sorted(known))})")
            elif not isinstance(text, str):
                problems.append(f"[{table}] {name}: must be a string")
    unknown_tables = set(data) - {"language", "snippets", "error_names"}
    if unknown_tables:
        problems.append(f"unknown tables {sorted(unknown_tables)} (a pack has language, snippets, error_names)")
    if not problems:  # the parameters, once the helpers are in
        snippets = _included(snippets, problems)
        for name, text in snippets.items():
            unknown = set(_PLACEHOLDER.findall(text)) - set(SNIPPETS[name].params) if name in SNIPPETS else set()
            if unknown:
                params = ", ".join(SNIPPETS[name].params) or "none"
                problems.append(f"[snippets] {name}: unknown parameters {sorted(unknown)} (its parameters: {params})")
    workspace = (path.parent / str(language.get("workspace", ""))).resolve()
    if not isinstance(language.get("workspace"), str) or not workspace.is_dir():
        problems.append(f"[language] workspace: no folder {workspace} (the sample workspace, beside the pack)")
    if problems:
        raise PackError(f"{path}: " + "; ".join(problems))
    return LanguagePack(
        name=language["name"],
        source=str(path),
        extension=extension,
        workspace=workspace,
        snippets={name: text for name, text in snippets.items() if not name.startswith("_")},
        error_names=dict(error_names),
    )


def _included(snippets: dict[str, str], problems: list[str]) -> dict[str, str]:
    """The snippets with each ``{{> _helper}}`` replaced by the helper's text (helpers include none)."""

    def helper(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in snippets:
            problems.append(f"[snippets] no helper {name} to include")
            return ""
        return snippets[name]

    return {name: text if name.startswith("_") else _INCLUDE.sub(helper, text) for name, text in snippets.items()}
