"""The solution's process: `python -I -S -c <wire.py + this file> REQ_FD RESP_FD LIMITS_JSON`.

Runs inside the isolation (bubblewrap). It sets its own resource limits, then loads the solution
and answers the evaluator's requests, one JSON line in (REQ_FD), one out (RESP_FD):

    ["load", code]                      -> ["loaded", {name: "callable" | "value" | "module:<name>"}]
                                           | ["load_error", "<Type>: <message>"]
    [op, target, *args]                 -> ["ok", value, args_after | null] | ["raise", "<Type>", message]

with target ["g", name] (a global of the solution) or ["h", id] (a handle the evaluator holds) and
op one of call, get, getattr, getitem, len, iter, bool, str, repr, contains. `call` also returns
its positional arguments after the call when one is a mutable builtin (tests that check in-place
changes). Values that are not builtin data stay here and cross as handles.

Nothing here is trusted: the solution may patch or replace any of it. The process holds no test
and no expected value, so whatever it answers is only the solution's answer.
"""

import builtins
import os
import resource
import signal
import sys


def _serve():
    req_fd, resp_fd = int(sys.argv[1]), int(sys.argv[2])
    limits = _json.loads(sys.argv[3])
    mb = 1024 * 1024
    for name, value in (("CPU", limits["cpu_s"]), ("AS", limits["memory_mb"] * mb), ("FSIZE", limits["fsize_mb"] * mb),
                        ("NOFILE", limits["nofile"]), ("NPROC", limits["nproc"]), ("CORE", 0)):
        soft = value
        hard = value + 1 if name == "CPU" else value  # CPU: SIGXCPU at the soft limit, SIGKILL one second later
        resource.setrlimit(getattr(resource, "RLIMIT_" + name), (soft, hard))
    # This process is its PID namespace's first process, to which the kernel delivers no signal that
    # has no handler: give SIGXCPU one, so the soft CPU limit ends it with the usual status.
    signal.signal(signal.SIGXCPU, lambda *_: os._exit(128 + signal.SIGXCPU))
    sys.set_int_max_str_digits(100_000)
    requests = os.fdopen(req_fd, "rb", buffering=1 << 16)
    handles = {}

    def handle_of(obj):
        handles[len(handles) + 1] = obj
        return len(handles)

    def send(data):
        # What the program printed reaches the grader before its answer does: the grader ends the
        # process once the verdict is in, and a buffered print would be lost to that race.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        while data:
            data = data[os.write(resp_fd, data):]

    def resolve(target):
        kind, key = target
        return ns[key] if kind == "g" else handles[key]

    ns = {"__name__": "__main__", "__builtins__": builtins}
    mutable = (list, dict, set, bytearray)
    ops = {
        "get": lambda obj: obj, "getattr": getattr, "getitem": lambda obj, key: obj[key], "len": len,
        "iter": list, "bool": bool, "str": str, "repr": repr, "contains": lambda obj, item: item in obj,
    }
    while True:
        line = requests.readline()
        if not line:
            return
        msg = wire_loads(line)
        if msg[0] == "load":
            try:
                exec(compile(msg[1], "solution.py", "exec"), ns)
            except BaseException as e:  # SystemExit too: exiting while loading is not passing
                send(wire_dumps(["load_error", f"{type(e).__name__}: {str(e)[:300]}"]))
                continue
            names = {}
            for k, v in list(ns.items()):
                if k != "__builtins__":
                    names[k] = f"module:{v.__name__}" if type(v) is type(sys) else "callable" if callable(v) else "value"
            send(wire_dumps(["loaded", names]))
            continue
        op, target, *rest = msg
        try:
            obj = resolve(target)
            args_after = None
            if op == "call":
                args = wire_decode(rest[0], handles.__getitem__)
                kwargs = wire_decode(rest[1], handles.__getitem__)
                value = obj(*args, **kwargs)
                if any(isinstance(a, mutable) for a in args):
                    args_after = wire_encode(list(args), handle_of)
            else:
                value = ops[op](obj, *(wire_decode(a, handles.__getitem__) for a in rest))
            reply = wire_dumps(["ok", wire_encode(value, handle_of), args_after])
        except BaseException as e:  # the solution's own exceptions are answers too
            reply = wire_dumps(["raise", type(e).__name__, str(e)[:300]])
        send(reply)


_json = __import__("json")
_serve()
