"""One memory + pids cgroup per run, where the machine lets the grader make one.

Per-process limits (RLIMIT_AS) do not bound what a run holds outside address space: memfd files,
SysV shared memory, tmpfs pages, pipe buffers, across up to `nproc` processes. A memory cgroup
charges all of it to the run, and a pids cgroup counts every task it makes. bubblewrap does not
create cgroups, so the grader does: it makes the run's groups under its own (cgroup v1 `memory`
and `pids` hierarchies, or v2 where both controllers are enabled for its children), moves the
program's first process in before the program runs, and removes the groups afterwards. Where no
cgroup can be made (not root, no delegation) the verdicts' guards say memory is limited per process.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

_COUNTER = itertools.count()


def _mounts() -> dict[str, Path]:
    """{"memory": path, "pids": path} of v1 hierarchies, {"unified": path} for cgroup2."""
    out: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype, _, opts = right.split(" ")[:3]
        point = Path(left.split(" ")[4])
        if fstype == "cgroup2":
            out.setdefault("unified", point)
        elif fstype == "cgroup":
            for c in ("memory", "pids"):
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
        self.dirs, self.v2 = dirs, v2

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

    def __init__(self, parents: list[Path], v2: bool):
        self.parents, self.v2 = parents, v2

    @classmethod
    def available(cls) -> "Cgroups | None":
        if os.geteuid() != 0:
            return None
        try:
            mounts, own = _mounts(), _own_paths()
            if "memory" in mounts and "pids" in mounts and "memory" in own and "pids" in own:
                found = cls([mounts[c] / own[c].lstrip("/") for c in ("memory", "pids")], v2=False)
            elif "unified" in mounts and "unified" in own:
                parent = mounts["unified"] / own["unified"].lstrip("/")
                enabled = (parent / "cgroup.subtree_control").read_text().split()
                if not {"memory", "pids"} <= set(enabled):
                    return None
                found = cls([parent], v2=True)
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
            else:
                (dirs[0] / "memory.limit_in_bytes").write_text(str(memory_bytes))
                _try_write(dirs[0] / "memory.memsw.limit_in_bytes", str(memory_bytes))  # no swapping around it
                (dirs[1] / "pids.max").write_text(str(pids))
        except OSError:
            group.remove()
            raise
        return group


def _try_write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError:  # swap accounting is off on this kernel: nothing to bound
        pass
