"""One memory + pids (+ cpu) cgroup per run, where the machine lets the grader make one.

Per-process limits do not bound a run as a whole: RLIMIT_AS misses memfd files, SysV shared
memory, tmpfs pages and pipe buffers, RLIMIT_CPU restarts in every forked child, and processes
that call setsid() each get a scheduler autogroup of their own, so 16 of them would take 16/17 of
the machine from a concurrent run. A memory cgroup charges all of a run's memory to it (socket
buffers too: under v1 only once `memory.kmem.tcp.limit_in_bytes` is written), a pids cgroup counts
every task, and a cpu cgroup makes the run one scheduling entity of equal weight, capped at one
core. bubblewrap does not create cgroups, so the grader does: it makes the run's groups under its
own (cgroup v1 hierarchies, or v2 where the controllers are enabled for its children), moves the
program's first process in before the program runs, and removes the groups afterwards. Where no
cgroup can be made (not root, no delegation) the verdicts' guards say so.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

_COUNTER = itertools.count()


def _mounts() -> dict[str, Path]:
    """{"memory": path, "pids": path, "cpu": path} of v1 hierarchies, {"unified": path} for cgroup2."""
    out: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype, _, opts = right.split(" ")[:3]
        point = Path(left.split(" ")[4])
        if fstype == "cgroup2":
            out.setdefault("unified", point)
        elif fstype == "cgroup":
            for c in ("memory", "pids", "cpu"):
                if c in opts.split(","):
                    out[c] = point
    return out


def _own_paths() -> dict[str, str]:
    """This process's cgroup per controller ("unified" for v2), from /proc/self/cgroup."""
    out: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else ["unified"]:
            out[c] = path
    return out


class RunGroup:
    """The cgroup(s) of one run."""

    def __init__(self, dirs: list[Path], v2: bool):
        self.dirs, self.v2 = dirs, v2  # memory first (v1: then pids, then cpu if there is one)

    def add(self, pid: int) -> None:
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(pid))

    def oom_killed(self) -> bool:
        """Did the kernel kill a process of the run for its memory limit?"""
        mem = self.dirs[0] / ("memory.events" if self.v2 else "memory.oom_control")
        try:
            fields = dict(line.split() for line in mem.read_text().splitlines())
        except (OSError, ValueError):
            return False
        return int(fields.get("oom_kill", 0)) > 0

    def remove(self) -> None:
        for d in self.dirs:
            for _ in range(50):  # empty once the namespace's last process is reaped
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


class Cgroups:
    """Where per-run groups are made; `available()` is None where this machine does not allow it."""

    def __init__(self, parents: list[Path], v2: bool, cpu: bool):
        self.parents, self.v2, self.cpu = parents, v2, cpu

    @classmethod
    def available(cls) -> "Cgroups | None":
        if os.geteuid() != 0:
            return None
        try:
            mounts, own = _mounts(), _own_paths()
            if all(c in mounts and c in own for c in ("memory", "pids")):
                cpu = "cpu" in mounts and "cpu" in own
                found = cls([mounts[c] / own[c].lstrip("/") for c in ("memory", "pids", "cpu")[: 3 if cpu else 2]],
                            v2=False, cpu=cpu)
            elif "unified" in mounts and "unified" in own:
                parent = mounts["unified"] / own["unified"].lstrip("/")
                enabled = set((parent / "cgroup.subtree_control").read_text().split())
                if not {"memory", "pids"} <= enabled:
                    return None
                found = cls([parent], v2=True, cpu="cpu" in enabled)
            else:
                return None
            found.new(64 << 20, 8).remove()  # can we really make, limit and remove one?
            return found
        except (OSError, ValueError):
            return None

    def new(self, memory_bytes: int, pids: int) -> RunGroup:
        name = f"rapidbench-{os.getpid()}-{next(_COUNTER)}"
        dirs = [p / name for p in self.parents]
        for d in dirs:
            d.mkdir()
        group = RunGroup(dirs, self.v2)
        try:
            if self.v2:
                (dirs[0] / "memory.max").write_text(str(memory_bytes))
                (dirs[0] / "pids.max").write_text(str(pids))
                _try_write(dirs[0] / "memory.swap.max", "0")
                if self.cpu:
                    (dirs[0] / "cpu.max").write_text("100000 100000")  # at most one core
            else:
                (dirs[0] / "memory.limit_in_bytes").write_text(str(memory_bytes))
                _try_write(dirs[0] / "memory.memsw.limit_in_bytes", str(memory_bytes))  # no swapping around it
                _try_write(dirs[0] / "memory.kmem.tcp.limit_in_bytes", str(memory_bytes))  # socket buffers count
                (dirs[1] / "pids.max").write_text(str(pids))
                if self.cpu:
                    (dirs[2] / "cpu.cfs_period_us").write_text("100000")
                    (dirs[2] / "cpu.cfs_quota_us").write_text("100000")  # at most one core
        except OSError:
            group.remove()
            raise
        return group


def _try_write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError:  # swap accounting is off on this kernel: nothing to bound
        pass
