"""The sandbox against hostile programs: never `pass`, nothing left behind, the grader keeps serving.

Every hostile program below is meant to solve `add(a, b)` and does not; each tries to pass anyway
or to damage the grader. Correct programs (prints, imports, helpers) must pass.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from rapidbench.tasks.sandbox import BASE_UID, Job, Limits, Sandbox, uid_processes

TESTS = ["assert add(1, 2) == 3", "assert add(-4, 4) == 0", "assert add(10, 5) == 15"]
CORRECT = Job("def add(a, b):\n    return a + b\n", TESTS)
MARKER = "/tmp/rb_sandbox_escape_marker"

HOSTILE = {
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
    "shadowed_assert_helpers": "__rb_eq = lambda a, b: None\n__rb_true = lambda x: None\n"
                               "def add(a, b):\n    return 0\n",
    "read_payload_fd": "import os\ndata = os.read(3, 100000)\ndef add(a, b):\n    return 0\n",
    "read_test_files": "import os\nfound = []\nfor root in ('.', '/tmp', '/proc/self/fd'):\n"
                       "    for r, _, fs in os.walk(root):\n        for f in fs:\n"
                       "            try:\n                found.append(open(os.path.join(r, f)).read())\n"
                       "            except Exception:\n                pass\n"
                       "def add(a, b):\n    return 0\n",
    "forge_stdout": "print('pass')\nprint('3/3 tests passed')\nprint('done')\ndef add(a, b):\n    return 0\n",
    "forge_verdict_fd": "import os\nfor fd in range(3, 20):\n    try:\n"
                        "        os.write(fd, b'0000 0 1 ok\\n0000 1 1 ok\\n0000 2 1 ok\\n0000 done\\n')\n"
                        "    except OSError:\n        pass\n"
                        "def add(a, b):\n    return 0\n",
    "forge_then_exit": "import os\nfor fd in range(3, 20):\n    try:\n"
                       "        os.write(fd, b'x 0 1 ok\\nx 1 1 ok\\nx 2 1 ok\\nx done\\n')\n    except OSError:\n        pass\n"
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
    "write_outside": f"for p in ('{MARKER}', '/work/rb_escape', '/root/rb_escape', '/dev/shm/rb_escape'):\n"
                     "    try:\n        open(p, 'w').write('x')\n    except OSError:\n        pass\n"
                     "def add(a, b):\n    return 0\n",
    "read_stdin": "x = input()\ndef add(a, b):\n    return int(x)\n",
}


@pytest.fixture(scope="module")
def sandbox():
    sb = Sandbox(pool_size=2, limits=Limits(wall_s=3.0, cpu_s=3, memory_mb=512, nproc=32, fsize_mb=8))
    yield sb
    sb.close()


@pytest.fixture(scope="module")
def listener():
    """A TCP listener on 127.0.0.1 in the grader's own network: no program may reach it."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    got: list[bytes] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                got.append(conn.recv(100) or b"connected")
                conn.close()
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1], got
    stop.set()
    srv.close()


def sandbox_processes() -> list[int]:
    return uid_processes(range(BASE_UID, BASE_UID + 64))


def leftover_dirs() -> list[str]:
    import tempfile

    return [p.name for p in Path(tempfile.gettempdir()).glob("rb-sandbox-*")]


def test_guards_reported(sandbox):
    assert set(sandbox.guards) == {"network", "filesystem", "processes"}
    v = sandbox.run(CORRECT)
    assert v.guards == sandbox.guards
    print("guards in force:", sandbox.guards)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_never_passes(sandbox, listener, name):
    port, received = listener
    code = HOSTILE[name].replace("{port}", str(port))
    before_dirs = set(leftover_dirs())
    v = sandbox.run(Job(code, TESTS))
    print(f"{name}: {v.status} ({v.detail[:120]})")
    assert v.status != "pass"
    assert v.status in ("fail", "timeout", "error")
    time.sleep(0.05)
    assert sandbox_processes() == []  # background, daemon, forked: all gone
    assert set(leftover_dirs()) <= before_dirs  # work and log dirs removed
    assert not os.path.exists(MARKER) and not os.path.exists("/work/rb_escape") and not os.path.exists("/root/rb_escape")
    assert received == []  # nothing reached the listener
    assert sandbox.run(CORRECT).status == "pass"  # and the grader still serves a correct program


def test_correct_programs_pass(sandbox):
    programs = [
        CORRECT.code,
        "import math\nfrom collections import Counter\n\ndef _helper(x):\n    return x\n\n"
        "def add(a, b):\n    print('adding', a, b)\n    return _helper(a) + _helper(b)\n",
        "add = lambda a, b: sum([a, b])\n",
        "import heapq, re, itertools, functools\n@functools.lru_cache(None)\ndef add(a, b):\n    return int(a) + int(b)\n",
    ]
    verdicts = sandbox.run_many([Job(p, TESTS) for p in programs])
    assert [v.status for v in verdicts] == ["pass"] * len(programs), [v.detail for v in verdicts]
    assert "adding 1 2" in verdicts[1].stdout
    # float and container answers compare by value and exact builtin type
    v = sandbox.run(Job("def f(x):\n    return [x / 2, {'k': (x,)}]\n", ["assert f(3) == [1.5, {'k': (3,)}]",
                                                                        "assert not f(0)[0]", "assert len(f(1)) == 2"]))
    assert v.status == "pass", v.detail


def test_a_full_pool_of_infinite_loops_returns_every_verdict(sandbox):
    t0 = time.monotonic()
    verdicts = sandbox.run_many([Job("while True:\n    pass\n", TESTS)] * 4)
    elapsed = time.monotonic() - t0
    assert [v.status for v in verdicts] == ["timeout"] * 4
    # 4 jobs on 2 slots at 3 s each: two rounds. A loose bound that only catches a hang.
    assert elapsed < 2 * 3.0 + 15
    assert sandbox_processes() == []
