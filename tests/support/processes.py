"""Processes of a local stack, read from /proc (Linux): which flow-run processes are alive,
and how much memory a process uses. For the fault suite and bench/bench_parked.py."""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def flow_run_processes(api_url: str) -> list[int]:
    """Pids of live flow-run processes (`python -m prefect.engine`) talking to this API URL:
    a launch parked at a gate holds none."""
    marker = f"PREFECT_API_URL={api_url}".encode()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if b"prefect.engine" not in cmdline:
                continue
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return sorted(found)


def rss_bytes(pid: int, with_children: bool = True) -> int:
    """Resident memory of a process (and, by default, every live descendant of it)."""
    pids = [pid] + (descendants(pid) if with_children else [])
    total = 0
    for p in pids:
        try:
            for line in (PROC / str(p) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out
