"""Grading untrusted programs: the tests run in a trusted evaluator, the program in bubblewrap.

Each job starts two processes that talk over two pipes:

- the **solution's process** (server.py), inside the isolation of isolation.py (bubblewrap by
  default): it loads the program and answers calls. It never holds a test or an expected value.
- the **evaluator** (evaluator.py), an ordinary process of the grader's: it holds the tests, runs
  them with its own builtins and modules, and reaches the solution only through calls whose
  arguments and answers cross as plain builtin data (wire.py). Its verdicts go to the grader on a
  pipe that only it holds.

So a program can only be right or wrong about the values it returns: patched builtins, stdlib
functions or type slots, frames, `gc`, tracing, forged records and early exits act on a process
the tests are not in. Limits: wall clock (the grade returns within `wall_s` plus a small margin,
always), CPU time, address space, processes (per run: its own user namespace counts them), file
size, open files, a size cap on the private /tmp and /dev/shm, and capped output. When a run ends,
its PID namespace is killed as a whole.

Verdicts: `pass` (every test ran and passed), `fail`, `timeout`, `error` (the program did not
load, or its process ended or broke the protocol before the tests finished).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rapidbench.tasks.sandbox.cgroup import Cgroups
from rapidbench.tasks.sandbox.isolation import MODES, SANDBOX_UID, SandboxUnavailable, isolation

__all__ = ["Job", "Limits", "MODES", "SANDBOX_UID", "Sandbox", "SandboxUnavailable", "Verdict"]

_HERE = Path(__file__).resolve().parent
_WIRE = (_HERE / "wire.py").read_text()
SERVER = _WIRE + (_HERE / "server.py").read_text()
EVALUATOR = _WIRE + (_HERE / "evaluator.py").read_text()
EVALUATOR_PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
MARGIN_S = 2.0  # evaluator start-up and exit, beyond the program's wall limit


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 512  # address space per process
    nproc: int = 16  # processes and threads of one run
    fsize_mb: int = 16  # per file
    nofile: int = 64
    work_mb: int = 32  # size of the private /tmp, and of /dev/shm (bwrap)
    run_memory_mb: int = 1024  # everything the run holds (processes, tmpfs, memfd, IPC), where a cgroup can be made
    output_kb: int = 64  # of stdout/stderr kept for the detail
    reply_kb: int = 16 << 10  # largest answer the evaluator reads

    def with_wall(self, wall_s: float) -> "Limits":
        """These limits with another wall-clock limit, the CPU limit following it."""
        return replace(self, wall_s=wall_s, cpu_s=max(1, round(wall_s)))


@dataclass
class Verdict:
    status: str  # pass | fail | timeout | error
    detail: str
    passed_tests: int = 0
    total_tests: int = 0
    guards: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    results: list[bool] = field(default_factory=list)  # per test (or case): passed, in order; missing = False
    outputs: list[Any] = field(default_factory=list)  # recording jobs: each case's answer (wire data), None if none
    elapsed_s: float = 0.0  # from the start of the run to its verdict

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass(frozen=True)
class Job:
    code: str  # the program (setup code, if any, already prepended by the task)
    tests: list[str]  # test code, run by the evaluator
    setup: str = ""  # trusted code the evaluator runs first (imports, the prompt's helper functions)
    entry_points: tuple[str, ...] = ()  # names the tests take from the program, even one shadowing a builtin
    # (default: every non-builtin name the tests call and do not define)
    # Data-driven tests instead of `tests` (MBPP+): [{"args": wire list, "expected": wire, "extra": wire}],
    # judged by the setup's function named `check`; `record` sends back each answer (see evaluator.run_cases).
    cases: list[dict] | None = None
    check: str = ""
    record: bool = False
    transform: str = ""
    # this job's wall-clock (and CPU) limit instead of the pool's, set by the task, never by the program:
    # MBPP+ scales it from the reference's own time (EvalPlus's rule), which the pool's one limit cannot
    wall_s: float | None = None

    @property
    def n_tests(self) -> int:
        return len(self.cases) if self.cases is not None else len(self.tests)


class Sandbox:
    """A pool of graders (default: one per core). Raises SandboxUnavailable if `mode` cannot run here."""

    def __init__(self, pool_size: int | None = None, limits: Limits = Limits(), mode: str = "bwrap"):
        self.pool_size = pool_size or os.cpu_count() or 1
        self.limits = limits
        self.iso = isolation(mode)
        self.cgroups = Cgroups.available()
        cg = self.cgroups
        self.guards = {**self.iso.guards, "memory": (
            f"cgroup {'v2' if cg.v2 else 'v1'}: {limits.run_memory_mb} MiB and {limits.nproc} tasks per run"
            + (", one scheduling group of at most one core" if cg.cpu else ", CPU not grouped (no cpu controller)")
            if cg else f"per process only ({limits.memory_mb} MiB address space; no cgroup can be made here)")}
        self._pool = ThreadPoolExecutor(self.pool_size, thread_name_prefix="sandbox")

    def run_many(self, jobs: list[Job]) -> list[Verdict]:
        return list(self._pool.map(self._run_safe, jobs))

    def run(self, job: Job) -> Verdict:
        return self._pool.submit(self._run_safe, job).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _run_safe(self, job: Job) -> Verdict:
        t0 = time.monotonic()
        try:
            v = self._run(job)
            v.elapsed_s = time.monotonic() - t0
            return v
        except Exception as e:  # noqa: BLE001 - a grader fault must still produce a verdict, never a pass
            return Verdict("error", f"sandbox: {type(e).__name__}: {e}", total_tests=job.n_tests, guards=self.guards)

    def _run(self, job: Job) -> Verdict:
        lim, iso = self.limits, self.iso
        if job.wall_s is not None:
            lim = lim.with_wall(job.wall_s)
        req_r, req_w = os.pipe()  # evaluator -> solution
        resp_r, resp_w = os.pipe()  # solution -> evaluator
        ver_r, ver_w = os.pipe()  # evaluator -> grader
        mine = [req_r, req_w, resp_r, resp_w, ver_r, ver_w]
        work = tempfile.mkdtemp(prefix="rb-sandbox-") if iso.mode == "process" else None
        sol = ev = group = None
        try:
            sol = iso.start(["-c", SERVER, str(req_r), str(resp_w), json.dumps(asdict(lim))], (req_r, resp_w), lim, work)
            ev = subprocess.Popen([EVALUATOR_PYTHON, "-I", "-S", "-c", EVALUATOR, str(req_w), str(resp_r), str(ver_w)],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  pass_fds=(req_w, resp_r, ver_w), env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                                  cwd="/", start_new_session=True)
            for fd in (req_r, req_w, resp_r, resp_w, ver_w):
                os.close(fd)
                mine.remove(fd)
            iso.ready(sol)  # meanwhile the evaluator starts
            if self.cgroups:  # in before the program runs: the evaluator sends it only once it has the job
                group = self.cgroups.new(lim.run_memory_mb << 20, lim.nproc)
                group.add(sol.pid)
            payload = json.dumps({"code": job.code, "tests": list(job.tests), "setup": job.setup,
                                  "entry_points": list(job.entry_points or called_names(job.tests)), "wall_s": lim.wall_s,
                                  "reply_cap": lim.reply_kb << 10, "cases": job.cases, "check": job.check,
                                  "record": job.record, "transform": job.transform}).encode()
            threading.Thread(target=_feed, args=(ev.stdin, payload), daemon=True).start()
            cap = lim.output_kb << 10
            out, err = sol.proc.stdout.fileno(), sol.proc.stderr.fileno()
            io = _Streams({ver_r: 1 << 24, out: cap, err: cap, ev.stderr.fileno(): cap})
            finished = io.pump(until=ver_r, deadline=time.monotonic() + lim.wall_s + MARGIN_S)
            _end_group(ev)
            iso.kill(sol)
            io.pump(until=None, deadline=time.monotonic() + 0.5)  # what the program wrote before it was killed
            records = [json.loads(x) for x in io.text(ver_r).splitlines() if x.strip()]
            v = _verdict(records, job.n_tests, not finished, sol.proc.returncode, ev.returncode, io.text(out),
                         io.text(err), io.text(ev.stderr.fileno()), self.guards)
            if group is not None and group.oom_killed() and v.status != "pass":
                v.detail = f"memory limit of the run ({lim.run_memory_mb} MiB) reached; {v.detail}"
            return v
        finally:
            if sol is not None and sol.proc.poll() is None:
                iso.kill(sol)
            for p in (ev, sol and sol.proc):
                if p is not None:
                    if p.poll() is None:
                        p.kill()
                    for pipe in (p.stdout, p.stderr):
                        if pipe is not None:
                            pipe.close()
            if group is not None:
                group.remove()
            for fd in mine:
                os.close(fd)
            if work:
                shutil.rmtree(work, ignore_errors=True)


def called_names(tests: list[str]) -> tuple[str, ...]:
    """Non-builtin names the tests call: what a test with no declared entry points takes from the program."""
    import ast
    import builtins

    names = set()
    for t in tests:
        try:
            names |= {n.func.id for n in ast.walk(ast.parse(t)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        except SyntaxError:
            continue
    return tuple(sorted(n for n in names if not hasattr(builtins, n)))


def _feed(pipe, data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except (BrokenPipeError, ValueError, OSError):
        pass


def _end_group(proc: subprocess.Popen, wait_s: float = 2.0) -> None:
    """Let the evaluator finish (it has sent its verdict), then end its whole process group."""
    try:
        proc.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        pass


class _Streams:
    """Reads several pipes at once, keeping at most `cap` bytes of each (the rest is read and dropped,
    so a flooding writer never blocks on us and never costs memory)."""

    def __init__(self, caps: dict[int, int]):
        self.caps = caps
        self.data = {fd: bytearray() for fd in caps}
        self.sel = selectors.DefaultSelector()
        for fd in caps:
            self.sel.register(fd, selectors.EVENT_READ)

    def pump(self, until: int | None, deadline: float) -> bool:
        """Read until `until` reaches EOF (True), every pipe does, or the deadline passes (False)."""
        while self.sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for key, _ in self.sel.select(timeout=left):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    self.sel.unregister(key.fd)
                    if key.fd == until:
                        return True
                    continue
                buf = self.data[key.fd]
                buf += chunk[: max(0, self.caps[key.fd] - len(buf))]
        return until is None

    def text(self, fd: int) -> str:
        return self.data[fd].decode("utf-8", "replace")


def _verdict(records: list[dict], n_tests: int, timed_out: bool, rc: int | None, ev_rc: int | None, stdout: str,
             stderr: str, ev_stderr: str, guards: dict[str, str]) -> Verdict:
    v = Verdict("fail", "", 0, n_tests, guards, stdout)
    weak = "" if guards.get("mode") == "bwrap" else f" [sandbox: {guards.get('mode')}]"
    # per test (or case) whatever the run's end: what passed, and what a recording got
    results = {r["test"]: r for r in records if "test" in r}
    outs = {r["case"]: r["out"] for r in records if "case" in r}
    recording = bool(outs)
    v.results = [(i in outs) if recording else results.get(i, {}).get("ok") is True for i in range(n_tests)]
    v.outputs = [outs.get(i) for i in range(n_tests)] if recording else []
    v.passed_tests = sum(v.results)
    aborts = [r["abort"] for r in records if "abort" in r]
    cpu = rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU)
    done = any(r.get("done") for r in records)
    checking = not done and ev_rc in (-signal.SIGXCPU, -signal.SIGKILL)  # an answer too costly to check
    if timed_out or "timeout" in aborts or cpu or checking:
        v.status = "timeout"
        v.detail = ("CPU-time limit reached" if cpu and not timed_out else
                    "checking the answers ran out of time" if checking and not timed_out else "wall-clock limit reached")
    elif any("load_error" in r for r in records):
        v.status, v.detail = "error", "solution failed to load: " + next(r["load_error"] for r in records if "load_error" in r)
    elif aborts:
        status = f"killed by signal {rc - 128 if rc > 128 else -rc}" if rc and (rc < 0 or rc > 128) else f"exit status {rc}"
        tail = stderr.strip().splitlines()[-1][:200] if stderr.strip() else ""
        v.status, v.detail = "error", f"ended before all tests ran ({aborts[0]}; {status}) {tail}".strip()
    elif not done:
        tail = ev_stderr.strip().splitlines()[-1][:200] if ev_stderr.strip() else "no verdict"
        v.status, v.detail = "error", f"evaluator failed: {tail}"
    elif n_tests == 0:
        v.status, v.detail = "error", "no tests to run"
    elif recording:  # every case answered, or the program failed some
        v.status = "pass" if all(v.results) else "fail"
        v.detail = f"{v.passed_tests}/{n_tests} answers recorded"
    else:
        if v.passed_tests == n_tests:
            v.status, v.detail = "pass", f"{n_tests}/{n_tests} tests passed"
        else:
            first = next(i for i in range(n_tests) if results.get(i, {}).get("ok") is not True)
            v.detail = f"{v.passed_tests}/{n_tests} tests passed; test {first}: {results.get(first, {}).get('why', 'missing')}"
    v.detail += weak
    return v
