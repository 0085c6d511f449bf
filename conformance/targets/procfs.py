"""Linux's /proc, read for the executors the kit starts as local processes, and for what
scenarios plant: process trees, their memory and CPU, their listening ports, and killing a set of
processes by PID and start time (a reused PID is never killed)."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from .base import ResourceUsage

__all__ = ["KILLED_GONE_WITHIN", "kill_until_gone", "listening_ports", "process_tree", "process_tree_usage"]


def process_tree(root_pid: int) -> dict[int, list[str]]:
    """``root_pid`` and all its descendants: pid -> the fields of /proc/PID/stat after the command name."""
    stats: dict[int, list[str]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stats[int(stat_file.parent.name)] = stat_file.read_text().rsplit(")", 1)[1].split()
    tree: dict[int, list[str]] = {}
    frontier = [root_pid]
    while frontier:
        pid = frontier.pop()
        if pid in tree or pid not in stats:
            continue
        tree[pid] = stats[pid]
        frontier.extend(child for child, fields in stats.items() if fields[1] == str(pid))
    return tree


#: Seconds the processes the kit kills (a stopped executor's, what a scenario planted) have to go.
KILLED_GONE_WITHIN = 5.0


def _alive_as(pid: object, start: object) -> bool:
    """Whether PID ``pid`` is still the process that started at ``start`` (clock ticks after boot,
    /proc/PID/stat's field 22) and not a zombie (dead, waiting for its parent to reap it)."""
    with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{pid}/stat", encoding="utf-8") as file:
        fields = file.read().rsplit(")", 1)[1].split()
        return fields[19] == str(start) and fields[0] != "Z"
    return False


def kill_until_gone(processes: Mapping[int, str], within: float = KILLED_GONE_WITHIN) -> list[int]:
    """SIGKILL every process of ``processes`` (PID -> start time) still alive as itself
    (``_alive_as``), until they are gone or ``within`` s pass: the PIDs left."""
    deadline = time.monotonic() + within
    while (survivors := [pid for pid, start in processes.items() if _alive_as(pid, start)]) and (
        time.monotonic() < deadline
    ):
        for pid in survivors:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    return survivors


def process_tree_usage(root_pid: int) -> ResourceUsage | None:
    """RSS and CPU time of ``root_pid`` and all its descendants, from Linux's /proc."""
    tree = process_tree(root_pid)
    memory = cpu_ticks = 0
    for fields in tree.values():
        with contextlib.suppress(ValueError, IndexError):
            cpu_ticks += int(fields[11]) + int(fields[12])  # utime, stime
            memory += int(fields[21]) * resource.getpagesize()  # rss, in pages
    if not tree or memory == 0:
        return None
    return ResourceUsage(memory, cpu_ticks / os.sysconf("SC_CLK_TCK"), f"RSS of {len(tree)} processes")


def listening_ports(root_pid: int) -> set[int]:
    """The TCP ports that ``root_pid`` or a descendant listens on, from Linux's /proc."""
    inodes = set()
    for pid in process_tree(root_pid):
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:["):
                        inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
