"""Runs inside the sandboxed child (`python -I -S -c <this file>`); trusted code, then the solution.

Protocol: the payload (JSON: code, tests, setup, nonce) arrives on fd 3, which is read and closed
before any solution code runs, so tests and expected values are never on disk and never readable
afterwards. Verdicts go out on fd 4 as lines `<nonce> <test index> <0|1> <why>`, one per test and
only after that test ran, then `<nonce> done`. The parent counts them: a missing record (early
exit, crash, kill) or a duplicate (a forged line) is not a pass.

Tests are compiled by the harness with every `assert` rewritten to call checks captured before the
solution ran: `assert a == b` compares values of trusted builtin / standard-library types only (an object whose __eq__ always
says True is not an int; 3 == 3.0 and Counter == dict hold, as in Python), and `assert x` /
`assert not x` require a truthy / falsy value of such a type (a re.Match counts; a solution's own
class with a lying __bool__ does not). Tests see pristine builtins, whatever the solution patched.
"""

import ast
import builtins
import collections
import json
import os
import re


def _main():  # noqa: C901 - one function so the solution cannot reach harness globals by name
    data = b""
    while True:
        chunk = os.read(3, 1 << 16)
        if not chunk:
            break
        data += chunk
    os.close(3)
    payload = json.loads(data)
    nonce = payload["nonce"]
    out_fd = 4
    pristine = dict(builtins.__dict__)  # snapshot before the solution can patch the module
    _type, _len, _zip, _isinstance, _str, _all = type, len, zip, isinstance, str, all
    _write, _repr = os.write, repr
    scalars = (int, float, complex, str, bytes, bool, type(None))
    # Trusted standard-library types whose comparisons and truth no solution can override.
    dicts = (dict, collections.Counter, collections.OrderedDict, collections.defaultdict)
    sets = (set, frozenset)
    containers = (list, tuple) + sets + dicts
    truthy_ok = scalars + containers + (re.Match, range)

    def hashable_value(x):
        t = _type(x)
        return t in scalars or (t in (tuple, frozenset) and _all(hashable_value(y) for y in x))

    def exact_equal(a, b):
        ta, tb = _type(a), _type(b)
        if ta in scalars or tb in scalars:
            if ta is tb:
                return a == b
            numeric = (int, float)  # 3 == 3.0, as Python says; bool stays apart
            return ta in numeric and tb in numeric and a == b
        if ta in (list, tuple) or tb in (list, tuple):
            return ta is tb and _len(a) == _len(b) and _all(exact_equal(x, y) for x, y in _zip(a, b))
        if ta in sets and tb in sets:
            return _len(a) == _len(b) and _all(hashable_value(x) for x in a) and a == b
        if ta in dicts and tb in dicts:
            return (_len(a) == _len(b) and _all(hashable_value(k) for k in a)
                    and _all(k in b and exact_equal(a[k], b[k]) for k in a))
        return False  # anything else (a solution's own classes) never equals an expected value

    class _Fail(BaseException):
        pass

    def check_eq(a, b):
        if not exact_equal(a, b):
            raise _Fail("values differ")

    def check_true(x):
        if _type(x) not in truthy_ok or not x:
            raise _Fail("not a truthy builtin value")

    def check_false(x):
        if _type(x) not in truthy_ok or x:
            raise _Fail("not a falsy builtin value")

    class Rewrite(ast.NodeTransformer):
        def visit_Assert(self, node):
            t = node.test
            if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):
                call = ast.Call(ast.Name("__rb_eq", ast.Load()), [t.left, t.comparators[0]], [])
            elif isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.Not):
                call = ast.Call(ast.Name("__rb_false", ast.Load()), [t.operand], [])
            else:
                call = ast.Call(ast.Name("__rb_true", ast.Load()), [t], [])
            return ast.copy_location(ast.Expr(call), node)

    def record(text):
        _write(out_fd, (nonce + " " + text.replace("\n", " ")[:300] + "\n").encode())

    # Compile every test before the solution runs: its patches cannot reach the compiler (ast uses
    # the builtins module, which a solution may patch; this harness itself runs on a private copy).
    compiled = []
    for i, test in enumerate(payload["tests"]):
        try:
            compiled.append(compile(ast.fix_missing_locations(Rewrite().visit(ast.parse(test))), "test_%d.py" % i, "exec"))
        except SyntaxError as e:
            compiled.append(e)
    ns = {"__name__": "__main__", "__builtins__": dict(pristine)}
    try:
        exec(compile(payload.get("setup", "") + "\n" + payload["code"], "solution.py", "exec"), ns)
    except BaseException as e:  # SystemExit included: exiting early is not passing
        record("load 0 " + _type(e).__name__ + ": " + _str(e)[:200])
        record("done")
        return
    for i, code in enumerate(compiled):
        try:
            if _isinstance(code, SyntaxError):
                raise code
            env = dict(ns)
            env["__builtins__"] = dict(pristine)
            env["__rb_eq"], env["__rb_true"], env["__rb_false"] = check_eq, check_true, check_false
            exec(code, env)
            record("%d 1 ok" % i)
        except _Fail as e:
            record("%d 0 %s" % (i, e))
        except BaseException as e:
            record("%d 0 %s: %s" % (i, _type(e).__name__, _repr(e)[:200]))
    record("done")


if __name__ == "rb_harness":
    _main()
