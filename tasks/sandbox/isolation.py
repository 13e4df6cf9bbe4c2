"""Where the solution's process runs: inside bubblewrap (default), or, opted into, a bare process.

`bwrap` (bubblewrap 0.8, Debian package `bubblewrap`) gives the process new user, PID, IPC, UTS,
network, mount and cgroup namespaces, `no_new_privs`, no capabilities, no nested user namespaces,
a new session and death with its parent. Its file system is a read-only view of /usr (with the
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
import shutil
import signal
import subprocess
import sys
import sysconfig
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

    def popen(self, argv: list[str], fds: tuple[int, ...], info_fd: int | None, limits, work: str | None):
        """Start the solution's process; fds keep their numbers inside."""
        prefix = list(self.prefix)
        if self.mode == "bwrap":
            prefix[1:1] = ["--info-fd", str(info_fd), "--size", str(limits.work_mb << 20), "--tmpfs", "/tmp",
                           "--perms", "1777", "--size", str(limits.work_mb << 20), "--tmpfs", "/dev/shm"]
        ids = {"user": self.run_as, "group": self.run_as, "extra_groups": []} if self.run_as is not None else {}
        return subprocess.Popen(
            [*prefix, self.python, "-I", "-S", *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, pass_fds=(*fds, *((info_fd,) if info_fd is not None else ())),
            start_new_session=True, cwd=work, env=_process_env(work) if self.mode == "process" else {"PATH": "/usr/bin:/bin"},
            **ids)

    def kill(self, proc: subprocess.Popen, info_r: int | None, wait_s: float = 5.0) -> None:
        """End the solution's process and everything it started; every wait bounded."""
        if self.mode == "bwrap":
            pidfd = _sandbox_init(proc, info_r)
            if pidfd is not None:  # the namespace's first process: its death ends every process in it
                try:
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    import select

                    select.select([pidfd], [], [], wait_s)  # readable once it (and so the namespace) is gone
                except ProcessLookupError:
                    pass
                finally:
                    os.close(pidfd)
        else:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            try:
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                pass  # stuck in the kernel; the verdict is returned anyway, never a hang


def _process_env(work: str | None) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": work or "/tmp", "TMPDIR": work or "/tmp",
            "PYTHONDONTWRITEBYTECODE": "1"}


def _sandbox_init(proc: subprocess.Popen, info_r: int | None) -> int | None:
    """A pidfd of the sandbox's PID 1 (from bubblewrap's --info-fd), while bubblewrap still holds it."""
    if info_r is None or proc.poll() is not None:
        return None  # bubblewrap has exited: it reaped its child, so the namespace is already gone
    os.set_blocking(info_r, False)
    try:
        info = json.loads(os.read(info_r, 4096) or b"{}")
        return os.pidfd_open(int(info["child-pid"]))
    except (BlockingIOError, ValueError, KeyError, ProcessLookupError, OSError):
        return None


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
        "network": "none (empty network namespace)", "processes": "pid namespace, killed as a whole",
        "uid": f"{INNER_UID} inside, {SANDBOX_UID if root else os.geteuid()} outside; no capabilities, no_new_privs",
        "tests": "trusted evaluator process"})
    probe = subprocess.run([*iso.prefix, "--size", str(1 << 20), "--tmpfs", "/tmp", python, "-I", "-S", "-c", "pass"],
                           capture_output=True, text=True, timeout=30,
                           **({"user": SANDBOX_UID, "group": SANDBOX_UID, "extra_groups": []} if root else {}))
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        raise SandboxUnavailable(f"bubblewrap cannot start a sandbox here ({why}): allow unprivileged user namespaces "
                                 "(sysctl kernel.unprivileged_userns_clone=1, or user.max_user_namespaces > 0), or set "
                                 "task_args.sandbox=process to grade with weaker isolation")
    return iso
