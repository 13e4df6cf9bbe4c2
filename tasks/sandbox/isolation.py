"""Where the solution's process runs: inside bubblewrap (default), or, opted into, a bare process.

`bwrap` (bubblewrap 0.8, Debian package `bubblewrap`) gives the process new user, PID, IPC, UTS,
network, mount and cgroup namespaces, `no_new_privs`, no capabilities, no nested user namespaces,
a new session and death with its parent. A seccomp filter (made with libseccomp) lets only Unix
sockets exist (AF_VSOCK, a VM's channel to its host, is not isolated by the network namespace, and
TCP buffers are not charged to a cgroup-v1 memory limit; nothing in the empty namespace needs IP),
and refuses io_uring and the kernel keyrings (a grader's session keyring is inherited through
every namespace: a program could read or wipe its keys and leave notes for the next run). Its file system is a read-only view of /usr (with the
/bin, /lib... links) and the interpreter's installation, with every site-/dist-packages directory
and this project covered by empty read-only tmpfs; /tmp (the working directory) and /dev/shm are
private tmpfs with a size cap. Nothing else of the host exists there: no checkout, no data, no
home, no /run, /var or /etc. When the grader is root, bubblewrap itself runs as the unprivileged
SANDBOX_UID, so the solution's uid outside the namespace owns nothing (as root's mapped uid it
could chmod the host's device nodes). Killing the namespace's first process ends every process in
it, whatever its uid, state or name; each run has its own namespaces, so concurrent graders
cannot see each other.

`process` (task_args.sandbox=process) is for machines where bubblewrap cannot run: resource limits,
a temporary working directory and a process group only. It has the host's file system and network,
and a program that calls setsid survives it. Its verdicts say so.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

SANDBOX_UID = 61000  # bubblewrap's uid outside the namespace when the grader is root
INNER_UID = 65534  # what the program sees inside
MODES = ("bwrap", "process")
_PROJECT = Path(__file__).resolve().parents[2]  # the checkout (or installed package root)
_PACKAGE = Path(__file__).resolve().parents[1]  # rapidbench/tasks (data included)


class SandboxUnavailable(ValueError):
    """The chosen isolation cannot run on this machine (a configuration error); the message names the fix."""


def _traversable(path: str) -> bool:
    """Can a uid other than the owner walk down to `path` (o+x on every ancestor)?"""
    p = Path(path)
    return all(os.stat(d).st_mode & 0o001 for d in [*reversed(p.parents), p] if d.exists())


def _interpreter(as_other_uid: bool) -> str:
    """The Python that runs solutions: the grader's own base interpreter, or, when the sandbox uid
    cannot reach it (pyenv under /root), the system's python of the same version."""
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    if not as_other_uid or _traversable(base) and _traversable(os.path.realpath(sys.base_prefix)):
        return base
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for d in ("/usr/bin", "/usr/local/bin"):
        cand = os.path.join(d, name)
        if os.path.isfile(cand) and _traversable(os.path.realpath(cand)):
            return os.path.realpath(cand)
    raise SandboxUnavailable(f"the sandbox uid {SANDBOX_UID} cannot reach {base} and there is no system {name}: "
                             f"install {name} system-wide (e.g. apt-get install {name}) or run from an interpreter "
                             "outside /root")


def _prefix_of(python: str) -> str:
    return str(Path(python).resolve().parent.parent)


def _hidden_dirs(roots: list[str]) -> list[str]:
    """Directories under the bound trees that the program must not see: installed packages, this project."""
    cands = {str(_PROJECT), str(_PACKAGE)}
    for base in {sys.base_prefix, sys.prefix, "/usr", "/usr/local"}:
        paths = sysconfig.get_paths(vars={"base": base, "platbase": base, "installed_base": base})
        cands |= {paths["purelib"], paths["platlib"]}
    for d in ("/usr/lib/python3", "/usr/local/lib", "/usr/lib"):
        cands |= {str(p) for p in Path(d).glob("python3*/dist-packages")} | {str(p) for p in Path(d).glob("python3*/site-packages")}
    inside = [c for c in cands if os.path.isdir(c) and any(c == r or c.startswith(r.rstrip("/") + "/") for r in roots)]
    return sorted(set(os.path.realpath(c) for c in inside))


@dataclass(frozen=True)
class Isolation:
    mode: str
    python: str  # interpreter of the solution's process
    prefix: list[str]  # command before the interpreter (bwrap and its options); [] for `process`
    run_as: int | None  # uid to start the prefix as (root graders), else None
    guards: dict[str, str]
    seccomp: bytes = b""  # BPF program for bwrap's --add-seccomp-fd

    def start(self, argv: list[str], fds: tuple[int, ...], limits, work: str | None) -> "Started":
        """Start the solution's process (fds keep their numbers inside); `ready()` says when it exists.
        The program itself runs only when the evaluator sends it."""
        prefix, extra, info_r = list(self.prefix), (), None
        if self.mode == "bwrap":
            info_r, info_w = os.pipe()
            bpf_r, bpf_w = os.pipe()
            os.write(bpf_w, self.seccomp)  # a few hundred bytes: the pipe holds them
            os.close(bpf_w)
            prefix[1:1] = ["--info-fd", str(info_w), "--add-seccomp-fd", str(bpf_r),
                           "--size", str(limits.work_mb << 20), "--tmpfs", "/tmp",
                           "--perms", "1777", "--size", str(limits.work_mb << 20), "--tmpfs", "/dev/shm"]
            extra = (info_w, bpf_r)
        ids = {"user": self.run_as, "group": self.run_as, "extra_groups": []} if self.run_as is not None else {}
        try:
            proc = subprocess.Popen(
                [*prefix, self.python, "-I", "-S", *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, pass_fds=(*fds, *extra), start_new_session=True, cwd=work,
                env=_process_env(work) if self.mode == "process" else {"PATH": "/usr/bin:/bin"}, **ids)
        finally:
            for fd in extra:
                os.close(fd)
        return Started(proc, proc.pid if info_r is None else None, None, info_r)

    def ready(self, run: "Started", wait_s: float = 10.0) -> None:
        """Wait until the program's first process exists and learn its pid (bubblewrap's --info-fd)."""
        if run.info_r is None:
            return
        pid = _child_pid(run.info_r, time.monotonic() + wait_s)
        if pid is None:
            self.kill(run)  # before its info pipe closes: bubblewrap must not die half way on SIGPIPE
            raise RuntimeError("bubblewrap did not start the sandbox: " + run.proc.stderr.read(2000).decode("utf-8", "replace"))
        os.close(run.info_r)
        run.info_r = None
        run.pid, run.pidfd = pid, os.pidfd_open(pid)

    def kill(self, run: "Started", wait_s: float = 5.0) -> None:
        """End the solution's process and everything it started; every wait bounded."""
        if run.pidfd is not None:  # the namespace's first process: its death ends every process in it
            try:
                signal.pidfd_send_signal(run.pidfd, signal.SIGKILL)
                _wait_readable(run.pidfd, wait_s)  # readable once it (and so the namespace) is gone
            except ProcessLookupError:
                pass
            finally:
                os.close(run.pidfd)
                run.pidfd = None
        elif self.mode == "process":
            try:
                os.killpg(run.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:  # bubblewrap, not (yet) ready: its child may exist without a parent-death signal
            _kill_before_ready(run.proc)
        try:
            run.proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            run.proc.kill()
            try:
                run.proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                pass  # stuck in the kernel; the verdict is returned anyway, never a hang
        if run.info_r is not None:
            os.close(run.info_r)
            run.info_r = None


def _wait_readable(fd: int, timeout_s: float) -> bool:
    """poll(), not select(): a trainer's file descriptors pass 1023."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(max(0.0, timeout_s) * 1000))


def _kill_before_ready(proc: subprocess.Popen) -> None:
    """Stop bubblewrap, kill the sandbox child it may already have made (which waits for bubblewrap
    and has no parent-death signal yet: killing only bubblewrap would strand it), then bubblewrap."""
    try:
        os.kill(proc.pid, signal.SIGSTOP)  # no new child from here on
    except ProcessLookupError:
        return
    for pid in _children(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.kill()


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:  # no CONFIG_PROC_CHILDREN: scan
        out = []
        for p in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = Path(f"/proc/{p}/stat").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rfind(b")") + 2 :].split()[1]) == pid:
                out.append(int(p))
        return out


def _child_pid(info_r: int, deadline: float) -> int | None:
    """The "child-pid" of bubblewrap's --info-fd JSON (written in pieces; read until it is whole)."""
    data = b""
    while time.monotonic() < deadline and _wait_readable(info_r, deadline - time.monotonic()):
        chunk = os.read(info_r, 4096)
        if not chunk:
            break
        data += chunk
        try:
            return int(json.loads(data)["child-pid"])
        except (ValueError, KeyError):
            continue
    return None


@dataclass
class Started:
    proc: subprocess.Popen  # bubblewrap, or the program itself (`process`)
    pid: int | None  # the program's first process, as the host sees it (known once ready)
    pidfd: int | None  # a race-free handle on it (bwrap)
    info_r: int | None = None  # bubblewrap's --info-fd, until read


@dataclass(frozen=True)
class _ProbeLimits:
    work_mb: int = 1


def _process_env(work: str | None) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": work or "/tmp", "TMPDIR": work or "/tmp",
            "PYTHONDONTWRITEBYTECODE": "1"}


def seccomp_filter() -> bytes:
    """The BPF program bubblewrap installs: Unix sockets only, no io_uring, no keyrings. Everything
    else is allowed (the namespaces and limits do the rest)."""
    import errno
    import tempfile

    try:
        import pyseccomp as sc
    except (ImportError, OSError) as e:  # the package, or libseccomp.so.2 under it
        raise SandboxUnavailable(f"libseccomp is not usable ({e}): run `apt-get install libseccomp2` and "
                                 "`pip install pyseccomp`, or set task_args.sandbox=process to grade with weaker isolation")
    f = sc.SyscallFilter(sc.ALLOW)
    # AF_UNIX (1) only; libseccomp takes one comparison per argument and rule: below it, and above it.
    for call in ("socket", "socketpair"):
        f.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), call, sc.Arg(0, sc.LT, 1))
        f.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), call, sc.Arg(0, sc.GT, 1))
    for call in ("io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key", "request_key"):
        f.add_rule(sc.ERRNO(errno.ENOSYS), call)
    with tempfile.TemporaryFile() as t:
        f.export_bpf(t)
        t.seek(0)
        return t.read()


def _bwrap_prefix(python: str) -> list[str]:
    roots = ["/usr"]
    cmd = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL", "--die-with-parent",
           "--new-session", "--as-pid-1", "--hostname", "sandbox", "--uid", str(INNER_UID), "--gid", str(INNER_UID),
           "--ro-bind", "/usr", "/usr"]
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(d):
            cmd += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            cmd += ["--ro-bind", d, d]
            roots.append(d)
    prefix = _prefix_of(python)
    if not any(prefix == r or prefix.startswith(r + "/") for r in roots):
        cmd += ["--ro-bind", prefix, prefix]
        roots.append(prefix)
    cmd += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for d in _hidden_dirs(roots):
        cmd += ["--tmpfs", d, "--remount-ro", d]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
            "--setenv", "HOME", "/tmp", "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    return cmd


def isolation(mode: str) -> Isolation:
    """The isolation for `mode`, checked by running it once. Raises SandboxUnavailable naming the fix."""
    if mode not in MODES:
        raise SandboxUnavailable(f"unknown sandbox mode '{mode}'; valid: {', '.join(MODES)}")
    if mode == "process":
        return Isolation("process", os.path.realpath(getattr(sys, "_base_executable", sys.executable)), [], None, {
            "mode": "process (weaker: opted in with task_args.sandbox=process)",
            "filesystem": "the host's (working directory a temporary directory)", "network": "the host's",
            "processes": "process group (a program that calls setsid survives)",
            "tests": "trusted evaluator process"})
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable("bubblewrap is not installed: run `apt-get install bubblewrap` (Debian/Ubuntu) or "
                                 "`dnf install bubblewrap`, or set task_args.sandbox=process to grade with weaker isolation")
    root = os.geteuid() == 0
    python = _interpreter(as_other_uid=root)
    iso = Isolation("bwrap", python, _bwrap_prefix(python), SANDBOX_UID if root else None, {
        "mode": "bwrap", "namespaces": "user, pid, ipc, uts, net, mount, cgroup",
        "filesystem": "read-only /usr and interpreter, packages hidden; private size-capped /tmp and /dev/shm",
        "network": "none (empty network namespace; seccomp: Unix sockets only, no io_uring, no keyrings)",
        "processes": "pid namespace, killed as a whole",
        "uid": f"{INNER_UID} inside, {SANDBOX_UID if root else os.geteuid()} outside; no capabilities, no_new_privs",
        "tests": "trusted evaluator process"}, seccomp_filter())
    try:
        probe = iso.start(["-c", "pass"], (), _ProbeLimits(), None)
        iso.ready(probe)
        probe.proc.wait(timeout=30)
        iso.kill(probe)
        failed = probe.proc.returncode != 0 and probe.proc.stderr.read().decode("utf-8", "replace")
    except RuntimeError as e:
        failed = str(e)
    if failed:
        why = (failed.strip().splitlines() or ["no output"])[-1]
        raise SandboxUnavailable(f"bubblewrap cannot start a sandbox here ({why}): allow unprivileged user namespaces "
                                 "(sysctl kernel.unprivileged_userns_clone=1, or user.max_user_namespaces > 0), or set "
                                 "task_args.sandbox=process to grade with weaker isolation")
    return iso
