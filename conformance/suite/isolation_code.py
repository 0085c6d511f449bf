"""The user code of the isolation scenarios (ISO-1 to ISO-6): what a hostile session runs.

Each function returns Python source that prints one JSON value on its last line. The code is
implementation-neutral: it assumes Linux's ``/proc`` and nothing of Jupyter. Everything it
starts has a bounded life (``LIFE`` seconds), and signals go only to processes inside the
executor (``scope``: the PID whose process tree is the executor, 1 in a container), never to
the kit's own processes.
"""

from __future__ import annotations

__all__ = [
    "LIFE",
    "background_talkers",
    "check_planted",
    "file_marks",
    "files_left",
    "plant",
    "processes_alive",
    "session_environment",
    "signal_everything",
    "start_heartbeat",
]

#: Seconds a process or thread started by a scenario lives at most.
LIFE = 60

#: /proc helpers: (state, ppid, start time) of a process; the processes user code can signal.
_PROC = r"""
import json, os
def _stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1]), fields[19]
    except (OSError, ValueError, IndexError):
        return None
def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().replace(b"\0", b" ").decode(errors="replace").replace("\n", " ").strip()[:160]
    except OSError:
        return "?"
def _living():
    found = {}
    for name in os.listdir("/proc"):
        stat = _stat(name) if name.isdigit() else None
        if stat is not None and stat[0] != "Z":
            found[int(name)] = stat
    return found
def _reachable(scope, with_ancestors):
    found, me = _living(), os.getpid()
    ancestors, pid = set(), me
    while pid in found and found[pid][1] > 0 and pid not in ancestors:
        pid = found[pid][1]
        ancestors.add(pid)
    tree = set(found)
    if scope is not None:
        tree, frontier = set(), [scope]
        while frontier:
            pid = frontier.pop()
            if pid in found and pid not in tree:
                tree.add(pid)
                frontier.extend(child for child, stat in found.items() if stat[1] == pid)
    chosen = []
    for pid in sorted(tree - {me}):
        if pid in ancestors and not with_ancestors:
            continue
        try:
            os.kill(pid, 0)
        except OSError:
            continue
        chosen.append([pid, found[pid][2], _cmdline(pid)])
    return chosen
"""

_HEARTBEAT = (
    "import os, sys, time\n"
    "if os.fork():\n    os._exit(0)\n"
    "os.setsid()\n"
    "if os.fork():\n    os._exit(0)\n"
    "sys.stdout.write(str(os.getpid()))\nsys.stdout.flush()\nos.close(1)\n"
    f"end = time.monotonic() + {LIFE}\n"
    "while time.monotonic() < end:\n    time.sleep(0.2)\n"
    "os._exit(0)\n"
)


def start_heartbeat(scope: int | None) -> str:
    """ISO-1: start a detached process (double fork, new session); list what user code can signal."""
    return _PROC + (
        "import subprocess, sys\n"
        f"child = subprocess.run([sys.executable, '-c', {_HEARTBEAT!r}], stdin=subprocess.DEVNULL,\n"
        "    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30)\n"
        "beat = int(child.stdout)\n"
        "stat = _stat(beat)\n"
        f"print(json.dumps({{'heartbeat': [beat, stat[2] if stat else '', _cmdline(beat)],\n"
        f"                  'reachable': _reachable({scope!r}, False)}}))\n"
    )


def processes_alive(processes: list[list[str | int]]) -> str:
    """ISO-1: which of ``processes`` ([pid, start time, command]) still run."""
    return _PROC + (
        f"alive = [[p, s, c] for p, s, c in {processes!r} if (_stat(p) or ('Z', 0, ''))[0] != 'Z'\n"
        "         and _stat(p)[2] == s]\n"
        "print(json.dumps(alive))\n"
    )


_FOLDERS = r"""
import os, sys, tempfile
def _inside(path, folders):
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)
_workspace = [os.path.realpath(p or ".") for p in sys.path
              if os.path.isfile(os.path.join(p or ".", "conformance_helper.py"))]
def _excluded(path):
    return _inside(path, _workspace + [os.path.realpath(f) for f in PERSISTENT])
"""


def file_marks(token: str, persistent: list[str]) -> str:
    """ISO-2: write a file in every place user code can write to; print the paths written."""
    return (
        f"PERSISTENT = {persistent!r}\n" + _FOLDERS + "import json\n"
        "places = {tempfile.gettempdir(), '/tmp', '/var/tmp', '/dev/shm', '/run/lock', '/var/lock',\n"
        "          os.path.expanduser('~'), os.getcwd(),\n"
        "          *(p or os.getcwd() for p in sys.path)}\n"
        "written = []\n"
        "for place in sorted({os.path.realpath(p) for p in places}):\n"
        "    if not os.path.isdir(place) or _excluded(place):\n        continue\n"
        f"    path = os.path.join(place, 'conformance-iso2-{token}.txt')\n"
        "    try:\n"
        f"        with open(path, 'x') as file:\n            file.write({token!r})\n"
        "    except OSError:\n        continue\n"
        "    written.append(path)\n"
        "print(json.dumps(written))\n"
    )


def files_left(paths: list[str]) -> str:
    """ISO-2 and ISO-3: which of ``paths`` still exist (each then removed, where user code can)."""
    return (
        "import json, os\n"
        f"left = [p for p in {paths!r} if os.path.lexists(p)]\n"
        "for path in left:\n"
        "    try:\n        os.remove(path)\n    except OSError:\n        pass\n"
        "print(json.dumps(left))\n"
    )


def _marker(token: str) -> str:
    return f"CONFORMANCE_PLANTED_{token}"


def plant(token: str) -> str:
    """ISO-3: plant start-up code (.pth, sitecustomize, usercustomize) in every writable import path
    and the user site, and a variable in the environment; print the files planted.

    Persistent folders are not spared: files there may outlive the session, but must not run.
    """
    marker = _marker(token)
    payload = f"import builtins; setattr(builtins, {marker!r}, True)\n"
    return (
        "PERSISTENT = []\n" + _FOLDERS + "import json, site\n"
        "folders = [p or os.getcwd() for p in sys.path] + [site.getusersitepackages()]\n"
        "planted = []\n"
        "for folder in dict.fromkeys(os.path.realpath(f) for f in folders):\n"
        "    if _excluded(folder) or folder.endswith('.zip'):\n        continue\n"
        "    try:\n        os.makedirs(folder, exist_ok=True)\n    except OSError:\n        continue\n"
        f"    for name in ('conformance_{token}.pth', 'sitecustomize.py', 'usercustomize.py'):\n"
        "        path = os.path.join(folder, name)\n"
        "        try:\n"
        f"            with open(path, 'x') as file:\n                file.write({payload!r})\n"
        "        except OSError:  # never overwrite a file that is there already\n            continue\n"
        "        planted.append(path)\n"
        f"os.environ[{marker!r}] = '1'\n"
        "print(json.dumps(planted))\n"
    )


def check_planted(token: str) -> str:
    """ISO-3: whether the planted code ran, in this session and in a new interpreter it starts."""
    marker = _marker(token)
    probe = f"import builtins, os; print(hasattr(builtins, {marker!r}) or {marker!r} in os.environ)"
    return (
        "import builtins, json, os, subprocess, sys\n"
        f"here = hasattr(builtins, {marker!r}) or {marker!r} in os.environ\n"
        f"new = subprocess.run([sys.executable, '-c', {probe!r}], capture_output=True, text=True, timeout=60)\n"
        "print(json.dumps({'session': here, 'new_interpreter': new.stdout.strip() == 'True'}))\n"
    )


def background_talkers(token: str) -> str:
    """ISO-4: a thread and a detached process that keep printing ``token`` for a bounded time."""
    line = f"conformance-leak-{token}"
    child = (
        "import time\n"
        f"end = time.monotonic() + {LIFE}\n"
        f"while time.monotonic() < end:\n    print({line!r}, flush=True)\n    time.sleep(0.05)\n"
    )
    return (
        "import subprocess, sys, threading, time\n"
        "def _talk():\n"
        f"    end = time.monotonic() + {LIFE}\n"
        f"    while time.monotonic() < end:\n        print({line!r}, flush=True)\n        time.sleep(0.05)\n"
        "threading.Thread(target=_talk, daemon=True).start()\n"
        f"subprocess.Popen([sys.executable, '-c', {child!r}], stdin=subprocess.DEVNULL, start_new_session=True)\n"
        "time.sleep(0.3)\n"
    )


def signal_everything(signal_name: str, scope: int | None, kit_namespace: str | None) -> str:
    """ISO-5: send ``signal_name`` to every process user code can reach inside the executor.

    With no known scope (a URL), the code refuses rather than reach outside the executor: when
    it runs as root, or in the kit's own PID namespace (where the kit's processes would be hit).
    """
    return _PROC + (
        "import signal\n"
        f"scope, kit_namespace = {scope!r}, {kit_namespace!r}\n"
        "refused = None\n"
        "if scope is None and os.geteuid() == 0:\n"
        "    refused = 'user code runs as root and the kit knows no bound of the executor'\n"
        "elif scope is None and os.readlink('/proc/self/ns/pid') == kit_namespace:\n"
        "    refused = 'user code runs in the kit\\'s own PID namespace, with no known bound of the executor'\n"
        "sent = []\n"
        "if refused is None:\n"
        "    for pid, start, command in _reachable(scope, True):\n"
        "        try:\n"
        f"            os.kill(pid, signal.{signal_name})\n"
        "            sent.append([pid, command])\n"
        "        except OSError:\n            pass\n"
        "print(json.dumps({'refused': refused, 'sent': sent}))\n"
    )


def session_environment(names: list[str]) -> str:
    """ISO-6: the values of ``names`` in user code's environment (null when unset)."""
    return f"import json, os\nprint(json.dumps({{n: os.environ.get(n) for n in {names!r}}}))\n"
