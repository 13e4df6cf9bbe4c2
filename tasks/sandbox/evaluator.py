"""The trusted evaluator: `python -I -S -c <wire.py + this file> REQ_FD RESP_FD VERDICT_FD`, job on stdin.

It holds the tests and their expected values; the solution's process never does. It asks the
solution's process to load the program, then runs each test here, as ordinary Python, in a
namespace where the names the tests take from the solution are proxies: calling one sends the
arguments across as plain data and returns the answer decoded into genuine builtin values
(wire.py); objects that are not data stay there as handles, which tests can only pass back, call,
index, iterate or read attributes of. So `==`, `math.isclose`, `set(...)`, `sorted`, the builtins
and every module the tests use are this process's own, untouched by anything the solution did.

Names in a test resolve, first match wins: the problem's entry points (always the solution's, even
one called `sum`); names the trusted setup defines (HumanEval's prompt helpers such as `poly`);
builtins; a standard-library module the solution imported under its own name (`import math`), which
is imported here, fresh: MBPP tests use the solution's `import math`, and fail like the original
when it has none. Nothing else is ever taken from the solution: a `class math` of its own, or a
module object it names after something else, is not a module the tests get.

Job (JSON on stdin): code, setup, tests, entry_points, wall_s, reply_cap; or, instead of tests,
`cases` (arguments and expected answers as wire data, judged by the setup's `check`, see
run_cases). Verdicts go out on VERDICT_FD as JSON lines: {"load_error"}, {"test", "ok", "why"}
per test after it ran ({"case", "out"} when recording), {"abort"} when the solution's process
ends, stalls or breaks the protocol, then {"done"}.
"""

import ast
import builtins
import importlib
import json
import os
import resource
import select
import sys
import time

# Standard-library modules that act when imported (or whose __main__ does): never imported here.
_DENY_IMPORT = {"antigravity", "this", "webbrowser", "turtle", "turtledemo", "tkinter", "idlelib", "pydoc", "venv",
                "ensurepip", "lib2to3", "unittest", "test", "doctest", "pdb", "__main__", "__hello__", "__phello__"}


class _Abort(BaseException):
    """The solution's process ended, stalled or broke the protocol. A BaseException, so a test's own
    `except Exception` cannot swallow it."""


class SolutionError(Exception):
    """An exception the solution raised whose type is not a builtin exception."""


def _evaluate():
    req_fd, resp_fd, verdict_fd = (int(a) for a in sys.argv[1:4])
    job = json.loads(sys.stdin.buffer.read())
    deadline = time.monotonic() + job["wall_s"]
    # Trusted code, untrusted data: an answer a test expands (set(range(10**12))) or a set built to
    # collide hashes must hit a limit here too.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    cpu = int(job["wall_s"]) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    sys.set_int_max_str_digits(100_000)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # a test that prints must not write into anything we read
    os.dup2(devnull, 2)
    os.set_blocking(req_fd, False)
    os.set_blocking(resp_fd, False)
    pending = bytearray()

    def emit(rec):
        os.write(verdict_fd, (json.dumps(rec) + "\n").encode())

    def wait(fd, write):
        left = deadline - time.monotonic()
        poller = select.poll()
        poller.register(fd, select.POLLOUT if write else select.POLLIN)
        if left <= 0 or not poller.poll(left * 1000):
            raise _Abort("timeout")

    def request(msg):
        data = wire_dumps(msg)
        while data:
            wait(req_fd, True)
            try:
                data = data[os.write(req_fd, data):]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                raise _Abort("the solution's process ended") from None
        while b"\n" not in pending:
            if len(pending) > job["reply_cap"]:
                raise _Abort(f"protocol: a reply over {job['reply_cap']} bytes")
            wait(resp_fd, False)
            try:
                chunk = os.read(resp_fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                raise _Abort("the solution's process ended")
            pending.extend(chunk)
        line, _, rest = bytes(pending).partition(b"\n")
        pending[:] = rest
        try:
            return wire_loads(line)
        except WireError as e:
            raise _Abort(f"protocol: {e}") from None

    class Remote:
        """A name or object that lives in the solution's process. Compares by identity only."""

        __slots__ = ("_target",)

        def __init__(self, target):
            object.__setattr__(self, "_target", target)

        def _op(self, op, *args):
            try:
                reply = request([op, self._target, *args])
                if type(reply) is not list or not reply:
                    raise WireError("bad reply")
                if reply[0] == "raise" and len(reply) == 3 and all(type(x) is str for x in reply[1:]):
                    cls = getattr(builtins, reply[1], None)
                    try:
                        exc = cls(reply[2]) if isinstance(cls, type) and issubclass(cls, Exception) else None
                    except Exception:  # builtin exceptions with other signatures
                        exc = None
                    raise exc or SolutionError(f"{reply[1]}: {reply[2]}")
                if reply[0] != "ok" or len(reply) != 3:
                    raise WireError("bad reply")
                value = wire_decode(reply[1], handle)
                after = wire_decode(reply[2], handle) if reply[2] is not None else None
            except WireError as e:
                raise _Abort(f"protocol: {e}") from None
            return value, after

        def __call__(self, *args, **kwargs):
            try:
                enc = wire_encode(list(args), handle_id), wire_encode(kwargs, handle_id)
            except WireError as e:
                raise TypeError(str(e)) from None
            value, after = self._op("call", *enc)
            if type(after) is list and len(after) == len(args):
                for orig, new in zip(args, after):  # in-place changes the solution made to its arguments
                    if type(orig) is type(new) and type(orig) in (list, bytearray):
                        orig[:] = new
                    elif type(orig) is type(new) and type(orig) in (dict, set):
                        orig.clear()
                        orig.update(new)
            return value

        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return self._op("getattr", name)[0]

        def __getitem__(self, key):
            try:
                key = wire_encode(key, handle_id)
            except WireError as e:
                raise TypeError(str(e)) from None
            return self._op("getitem", key)[0]

        def __len__(self):
            return self._checked(self._op("len")[0], int)

        def __bool__(self):
            return self._checked(self._op("bool")[0], bool)

        def __iter__(self):
            return iter(self._checked(self._op("iter")[0], list))

        def __str__(self):
            return self._checked(self._op("str")[0], str)

        def __contains__(self, item):
            try:
                item = wire_encode(item, handle_id)
            except WireError as e:
                raise TypeError(str(e)) from None
            return self._checked(self._op("contains", item)[0], bool)

        def __repr__(self):  # local: error messages must not call into the solution
            return f"<solution object {self._target[1]}>"

        def __setattr__(self, name, value):
            raise TypeError("solution objects are read-only here")

        @staticmethod
        def _checked(value, tp):
            if type(value) is not tp:
                raise TypeError(f"the solution answered a {type(value).__name__} where Python needs a {tp.__name__}")
            return value

    def handle(i):
        return Remote(["h", i])

    def handle_id(obj):
        if type(obj) is Remote and obj._target[0] == "h":
            return obj._target[1]
        raise WireError(f"a {type(obj).__name__} cannot cross to the solution's process")

    try:
        loaded = request(["load", job["code"]])
    except _Abort as e:
        emit({"abort": str(e)})
        emit({"done": True})
        return
    if type(loaded) is not list or len(loaded) != 2 or loaded[0] not in ("loaded", "load_error"):
        emit({"abort": "protocol: bad reply to load"})
        emit({"done": True})
        return
    if loaded[0] == "load_error":
        emit({"load_error": str(loaded[1])[:300]})
        emit({"done": True})
        return
    solution = loaded[1] if type(loaded[1]) is dict else {}
    setup = {"__name__": "__main__", "__builtins__": builtins}
    exec(compile(job["setup"], "setup.py", "exec"), setup)
    entry = set(job["entry_points"])

    def entry_point(name):
        kind = solution.get(name)
        if kind == "value":
            return Remote(["g", name])._op("get")[0]
        if kind is None:
            raise KeyError(name)
        return Remote(["g", name])

    def stdlib_module(name):
        """The evaluator's own copy of a module the solution imported as `import <name>`."""
        if solution.get(name) == "module:" + name and name in sys.stdlib_module_names and name not in _DENY_IMPORT:
            return importlib.import_module(name)
        raise KeyError(name)

    if job.get("cases") is not None:
        run_cases(job, setup, entry_point, emit)
        emit({"done": True})
        return
    for i, test in enumerate(job["tests"]):
        try:
            tree = ast.parse(test)
            ns = dict(setup)
            for name in sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}):
                if name in entry:
                    ns.pop(name, None)  # a setup stub of the entry point (HumanEval's prompt) never answers
                elif name in ns or hasattr(builtins, name):
                    continue
                try:
                    ns[name] = entry_point(name) if name in entry else stdlib_module(name)
                except KeyError:
                    pass  # undefined: the test fails with NameError, as it would have
            exec(compile(tree, f"test_{i}.py", "exec"), ns)
            emit({"test": i, "ok": True, "why": "ok"})
        except _Abort as e:
            emit({"test": i, "ok": False, "why": str(e)})
            emit({"abort": str(e)})
            break
        except AssertionError as e:
            emit({"test": i, "ok": False, "why": ("assertion failed: " + str(e))[:300] if str(e) else "assertion failed"})
        except BaseException as e:  # noqa: BLE001 - any other error in a test fails that test
            emit({"test": i, "ok": False, "why": f"{type(e).__name__}: {e}"[:300]})
    emit({"done": True})


def run_cases(job, setup, entry_point, emit):
    """Data-driven tests (MBPP+): call the entry point on each case's arguments and judge the answer
    with the trusted setup's `check(out, expected, extra)`; or, with `record`, send back each answer
    (after the setup's `transform`, if named): how the reference's expected outputs are made."""
    try:
        fn = entry_point(job["entry_points"][0])
    except KeyError:
        fn = None
    check = setup.get(job.get("check") or "", None)
    transform = setup.get(job.get("transform") or "", None)
    for i, case in enumerate(job["cases"]):
        try:
            if fn is None:
                raise NameError(f"name {job['entry_points'][0]!r} is not defined")
            out = fn(*wire_decode(case["args"]))  # decoded afresh: each call gets its own arguments
            if job.get("record"):
                emit({"case": i, "out": wire_encode(transform(out) if transform else out)})
                continue
            ok = check(out, wire_decode(case["expected"]), wire_decode(case.get("extra")))
            emit({"test": i, "ok": ok is True, "why": "ok" if ok is True else "wrong answer"})
        except _Abort as e:
            emit({"test": i, "ok": False, "why": str(e)})
            emit({"abort": f"case {i}: {e}"})
            return
        except BaseException as e:  # noqa: BLE001 - an error on one input fails that input
            emit({"test": i, "ok": False, "why": f"{type(e).__name__}: {e}"[:300]})


_evaluate()
