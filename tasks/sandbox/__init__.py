"""Isolated, resource-limited execution of untrusted programs against tests.

Each program runs in a fresh `python -I -S` subprocess, in its own temporary directory, session
and process group, with: wall-clock and CPU-time limits, address-space, process-count, file-size
and open-file limits, a scrubbed environment, stdin closed, stdout/stderr to capped files. Guards
that need privileges are used where the kernel allows them, and every verdict says which were in
force (`guards`):

- `netns`: a new, empty network namespace (no interface but a down loopback): no network at all.
  Fallback `socket-blocked`: socket creation is disabled in the child before the program runs.
- `private-tmp`: a new mount namespace with fresh tmpfs over /tmp, /var/tmp and /dev/shm, so the
  only writable places are the work directory and private scratch that vanishes with the run.
- `uid`: the program runs as an unprivileged uid of its own (one per pool slot): it cannot signal
  the grader or other runs, cannot write root's files, and its process limit is its own. After
  the run every process of that uid is killed, daemons included.
  Fallback `pgid`: the process group is killed (a daemon that called setsid can escape it).

Verdicts: `pass` (every test recorded as passed, then `done`), `fail`, `timeout`, `error`.
See harness.py for how tests are checked and why an early exit or a forged record is not a pass.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HARNESS = (Path(__file__).resolve().parent / "harness.py").read_text()
CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_REC, MS_PRIVATE, MS_NOSUID, MS_NODEV, MS_BIND = 0x4000, 1 << 18, 2, 4, 0x1000
PYTHON = os.path.realpath(sys.executable)  # the base interpreter: -S means no venv packages anyway
PYTHON_PREFIX = os.path.realpath(sys.base_prefix)
BASE_UID = 61000  # sandbox uids: BASE_UID + pool slot


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    nproc: int = 32
    fsize_mb: int = 16
    nofile: int = 64
    output_kb: int = 64  # of stdout/stderr kept for the detail


@dataclass
class Verdict:
    status: str  # pass | fail | timeout | error
    detail: str
    passed_tests: int = 0
    total_tests: int = 0
    guards: dict[str, str] = field(default_factory=dict)
    stdout: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass(frozen=True)
class Job:
    code: str
    tests: list[str]
    setup: str = ""


_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: the pre-exec hook must not import or dlopen


def _libc():
    return _LIBC


def probe_guards() -> dict[str, str]:
    """Which guards this machine allows, found by trying them in a throw-away child."""
    if os.geteuid() != 0:
        return {"network": "socket-blocked", "filesystem": "workdir-only-by-convention", "processes": "pgid"}
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: try the namespaces, report, exit
        os.close(r)
        libc = _libc()
        ok_net = libc.unshare(CLONE_NEWNET) == 0
        ok_ns = libc.unshare(CLONE_NEWNS) == 0 and libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0
        os.write(w, bytes([ok_net, ok_ns]))
        os._exit(0)
    os.close(w)
    got = os.read(r, 2)
    os.close(r)
    os.waitpid(pid, 0)
    net, mnt = (got[0], got[1]) if len(got) == 2 else (0, 0)
    return {"network": "netns" if net else "socket-blocked",
            "filesystem": "private-tmp" if mnt else "uid-permissions",
            "processes": "uid"}


def _preexec(guards: dict[str, str], uid: int, limits: Limits, hidden: str | None):
    """Runs in the child between fork and exec: namespaces, mounts, limits, then drop to `uid`."""

    def fn():
        libc = _libc()
        if guards["network"] == "netns":
            if libc.unshare(CLONE_NEWNET) != 0:
                os._exit(121)
        if guards["filesystem"] == "private-tmp":
            if libc.unshare(CLONE_NEWNS) != 0 or libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
                os._exit(122)
            for d in (b"/tmp", b"/var/tmp", b"/dev/shm"):
                if os.path.isdir(d):
                    libc.mount(b"tmpfs", d, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=8m,mode=1777")
            if hidden:
                # The interpreter lives under a directory the sandbox uid cannot enter (pyenv in
                # /root): cover that directory with an empty tmpfs (hiding the rest of it) and
                # bind only the Python installation back, at the same path, read-only by permissions.
                stash = b"/tmp/.rb-python"
                os.mkdir(stash, 0o755)
                prefix = PYTHON_PREFIX.encode()
                if libc.mount(prefix, stash, None, MS_BIND | MS_REC, None) != 0:
                    os._exit(123)
                libc.mount(b"tmpfs", hidden.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1m,mode=0755")
                os.makedirs(prefix, 0o755, exist_ok=True)
                if libc.mount(stash, prefix, None, MS_BIND | MS_REC, None) != 0:
                    os._exit(124)
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.fsize_mb * mb, limits.fsize_mb * mb))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.nofile, limits.nofile))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if guards["processes"] == "uid":
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.nproc, limits.nproc))
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)  # last: everything above needed root

    return fn


def _untraversable_ancestor(path: str) -> str | None:
    """The highest directory above `path` that others may not enter (pyenv under /root), if any."""
    parts = Path(path).parts
    for i in range(2, len(parts) + 1):
        d = Path(*parts[:i])
        if not os.stat(d).st_mode & 0o001:
            return str(d)
    return None


def uid_processes(uids: range) -> list[int]:
    """Live (not zombie) processes owned by any of `uids`. Zombies are dead; init reaps them."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if int(fields["Uid"].split()[1]) in uids and not fields["State"].strip().startswith("Z"):
                pids.append(int(pid))
        except (OSError, ValueError, KeyError):
            continue
    return pids


def _kill_uid(uid: int) -> None:
    """SIGKILL every live process owned by `uid` (the run's own uid), until none is left."""
    for _ in range(200):
        pids = uid_processes(range(uid, uid + 1))
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.005)
    raise RuntimeError(f"processes of sandbox uid {uid} survive SIGKILL")


class Sandbox:
    """A pool of sandbox slots (default: one per core). `run_many` keeps serving whatever runs."""

    def __init__(self, pool_size: int | None = None, limits: Limits = Limits()):
        self.pool_size = pool_size or os.cpu_count() or 1
        self.limits = limits
        self.guards = probe_guards()
        self.hidden = _untraversable_ancestor(PYTHON_PREFIX)
        if self.hidden and self.guards["filesystem"] != "private-tmp":
            raise RuntimeError(f"the sandbox uid cannot reach the interpreter under {self.hidden} and no mount namespace is available")
        self._free = list(range(self.pool_size))
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.pool_size, thread_name_prefix="sandbox")

    def run_many(self, jobs: list[Job]) -> list[Verdict]:
        return list(self._pool.map(self._run_slot, jobs))

    def run(self, job: Job) -> Verdict:
        return self._pool.submit(self._run_slot, job).result()

    def _run_slot(self, job: Job) -> Verdict:
        with self._lock:
            slot = self._free.pop()
        try:
            return self._run(job, BASE_UID + slot)
        except Exception as e:  # noqa: BLE001 - a grader fault must still produce a verdict
            return Verdict("error", f"sandbox: {type(e).__name__}: {e}", total_tests=len(job.tests), guards=self.guards)
        finally:
            with self._lock:
                self._free.append(slot)

    def _run(self, job: Job, uid: int) -> Verdict:
        lim, guards = self.limits, self.guards
        work = Path(tempfile.mkdtemp(prefix="rb-sandbox-"))
        logs = Path(tempfile.mkdtemp(prefix="rb-sandbox-out-"))  # the grader's, not the program's
        nonce = secrets.token_hex(16)
        payload = json.dumps({"code": job.code, "tests": job.tests, "setup": job.setup, "nonce": nonce}).encode()
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            if guards["processes"] == "uid":
                os.chown(work, uid, uid)
            os.chmod(work, 0o700)
            # fds 3 and 4 in the child: payload in, verdicts out
            env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(work)}
            harness = HARNESS
            if guards["network"] == "socket-blocked":
                harness = _SOCKET_BLOCK + harness
            with open(logs / "stdout", "wb") as so, open(logs / "stderr", "wb") as se:
                proc = subprocess.Popen(
                    [PYTHON, "-I", "-S", "-c", _FD_SHIM.format(i=in_r, o=out_w) + _run_private(harness)],
                    cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=so, stderr=se,
                    pass_fds=(in_r, out_w), start_new_session=True,
                    preexec_fn=_preexec(guards, uid, lim, self.hidden if guards["processes"] == "uid" else None),
                )
            os.close(in_r)
            os.close(out_w)
            in_r = out_w = -1
            try:
                os.write(in_w, payload)  # payloads are small; the pipe buffer and the reader take it
            except BrokenPipeError:
                pass
            os.close(in_w)
            in_w = -1
            chunks: list[bytes] = []
            reader = threading.Thread(target=_drain, args=(out_r, chunks, 1 << 20), daemon=True)
            reader.start()
            timed_out = False
            try:
                proc.wait(timeout=lim.wall_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            # Nothing survives: the whole uid (daemons included) or the process group.
            if guards["processes"] == "uid":
                _kill_uid(uid)
            else:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()
            reader.join(timeout=2)
            stdout = (logs / "stdout").read_bytes()[: lim.output_kb * 1024].decode("utf-8", "replace")
            stderr = (logs / "stderr").read_bytes()[-lim.output_kb * 1024:].decode("utf-8", "replace")
            return _verdict(b"".join(chunks).decode("utf-8", "replace"), nonce, len(job.tests), timed_out,
                            proc.returncode, stdout, stderr, guards)
        finally:
            for fd in (in_r, in_w, out_w):
                if fd >= 0:
                    os.close(fd)
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(logs, ignore_errors=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


# The child inherits the pipes under the parent's numbers; move them to 3 (payload) and 4 (verdicts).
_FD_SHIM = (
    "import os\n_a, _b = os.dup({i}), os.dup({o})\nos.dup2(_a, 3)\nos.dup2(_b, 4)\n"
    "for _f in {{{i}, {o}, _a, _b}} - {{3, 4}}:\n    os.close(_f)\ndel _a, _b, _f\n"
)
_SOCKET_BLOCK = (
    "import socket as _s, _socket as _cs\n"
    "def _no(*a, **k):\n    raise PermissionError('network disabled in the sandbox')\n"
    "_s.socket = _cs.socket = _s.create_connection = _no\n"
)


def _run_private(source: str) -> str:
    """Run the harness with its own copy of the builtins: `import builtins; builtins.x = ...` in a
    solution then changes the module, not what the harness's functions look up."""
    return ("import builtins as _b\n"
            f"exec(compile({source!r}, 'rb_harness', 'exec'), {{'__builtins__': dict(_b.__dict__), '__name__': 'rb_harness'}})\n")


def _drain(fd: int, chunks: list[bytes], cap: int) -> None:
    size = 0
    try:
        while True:
            b = os.read(fd, 1 << 16)
            if not b:
                break
            if size < cap:
                chunks.append(b[: cap - size])
            size += len(b)
    finally:
        os.close(fd)


def _verdict(channel: str, nonce: str, n_tests: int, timed_out: bool, rc: int, stdout: str, stderr: str,
             guards: dict[str, str]) -> Verdict:
    results: dict[str, list[str]] = {}
    done = 0
    for line in channel.splitlines():
        if not line.startswith(nonce + " "):
            continue  # not ours: ignored
        rest = line[len(nonce) + 1:]
        if rest == "done":
            done += 1
            continue
        key, _, tail = rest.partition(" ")
        results.setdefault(key, []).append(tail)
    tail_err = stderr.strip().splitlines()[-1][:200] if stderr.strip() else ""
    v = Verdict("fail", "", 0, n_tests, guards, stdout)
    if timed_out or rc == -signal.SIGXCPU:
        v.status, v.detail = "timeout", "wall-clock limit reached" if timed_out else "CPU-time limit reached"
        return v
    if done > 1 or any(len(r) > 1 for r in results.values()):
        v.status, v.detail = "error", "verdict channel tampered with (duplicate records)"
        return v
    if "load" in results:
        v.status, v.detail = "error", "solution failed to load: " + results["load"][0][2:]
        return v
    if done != 1:
        sig = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
        v.status, v.detail = "error", f"ended before all tests ran ({sig}) {tail_err}".strip()
        return v
    oks = [results.get(str(i), ["0 missing"])[0] for i in range(n_tests)]
    v.passed_tests = sum(o.startswith("1") for o in oks)
    if v.passed_tests == n_tests:
        v.status, v.detail = "pass", f"{n_tests}/{n_tests} tests passed"
    else:
        first = next(i for i, o in enumerate(oks) if not o.startswith("1"))
        v.detail = f"{v.passed_tests}/{n_tests} tests passed; test {first}: {oks[first][2:]}"
    return v
