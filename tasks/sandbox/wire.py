"""The plain-data wire format between the trusted evaluator and the solution's process.

Shipped as source text into both processes (neither imports the project), so it uses the standard
library only and defines nothing but `wire_encode`, `wire_decode` and `WireError`.

A value is JSON where scalars stand for themselves (None, bool, int, float including NaN and
infinities, str) and every other type is a one-key object: {"l": [...]} list, {"t": [...]} tuple,
{"s": [...]} set, {"f": [...]} frozenset, {"d": [[k, v], ...]} dict, {"b": hex} bytes,
{"B": hex} bytearray, {"c": [re, im]} complex, {"r": [start, stop, step]} range and {"h": id}, an
opaque handle to an object that stays in the solution's process. JSON alone keeps int and float
apart, so 3 and 3.0 arrive as Python would compare them.

Decoding is the guard: it builds only the builtin types above, bounded in depth and size, so what
the evaluator compares is always a genuine builtin value, whatever the solution's process sent.
Encoding is a convenience for honest programs (subclasses of builtins travel as their base:
a namedtuple as a tuple, a Counter as a dict, as `==` treats them).
"""

import json as _json

WIRE_MAX_DEPTH = 64
WIRE_MAX_ITEMS = 1_000_000


class WireError(Exception):
    """Data that does not follow the wire format."""


def wire_encode(x, handle_of=None, _depth=0):
    """Python value -> JSON-able structure. `handle_of(obj) -> int` makes handles for other objects;
    without it they are a WireError."""
    if _depth > WIRE_MAX_DEPTH:
        raise WireError("value nested too deeply")
    if x is None or x is True or x is False:
        return x
    d = _depth + 1
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return float(x)
    if isinstance(x, str):
        return str(x)
    if isinstance(x, complex):
        return {"c": [x.real, x.imag]}
    if isinstance(x, bytes):
        return {"b": bytes(x).hex()}
    if isinstance(x, bytearray):
        return {"B": bytes(x).hex()}
    if isinstance(x, range):
        return {"r": [x.start, x.stop, x.step]}
    if isinstance(x, list):
        return {"l": [wire_encode(y, handle_of, d) for y in x]}
    if isinstance(x, tuple):
        return {"t": [wire_encode(y, handle_of, d) for y in x]}
    if isinstance(x, frozenset):
        return {"f": [wire_encode(y, handle_of, d) for y in x]}
    if isinstance(x, set):
        return {"s": [wire_encode(y, handle_of, d) for y in x]}
    if isinstance(x, dict):
        return {"d": [[wire_encode(k, handle_of, d), wire_encode(v, handle_of, d)] for k, v in x.items()]}
    if handle_of is None:
        raise WireError(f"a {type(x).__name__} cannot cross to the solution's process")
    return {"h": handle_of(x)}


def wire_decode(obj, make_handle=None):
    """JSON structure -> genuine builtin values (handles through `make_handle(id)`). Raises WireError."""
    budget = [WIRE_MAX_ITEMS]

    def dec(o, depth):
        budget[0] -= 1
        if budget[0] < 0 or depth > WIRE_MAX_DEPTH:
            raise WireError("value too large or nested too deeply")
        t = type(o)
        if o is None or t is bool or t is int or t is float or t is str:
            return o
        if t is not dict or len(o) != 1:
            raise WireError(f"not a wire value: {t.__name__}")
        (tag, v), = o.items()
        if tag in ("l", "t", "s", "f"):
            if type(v) is not list:
                raise WireError("container without a list")
            items = [dec(y, depth + 1) for y in v]
            try:
                return {"l": list, "t": tuple, "s": set, "f": frozenset}[tag](items)
            except TypeError as e:  # an unhashable member of a set
                raise WireError(str(e)) from None
        if tag == "d":
            if type(v) is not list or any(type(p) is not list or len(p) != 2 for p in v):
                raise WireError("dict without key/value pairs")
            try:
                return {dec(k, depth + 1): dec(x, depth + 1) for k, x in v}
            except TypeError as e:
                raise WireError(str(e)) from None
        if tag in ("b", "B") and type(v) is str:
            try:
                raw = bytes.fromhex(v)
            except ValueError:
                raise WireError("bad hex") from None
            return raw if tag == "b" else bytearray(raw)
        if tag == "c" and type(v) is list and len(v) == 2 and all(type(p) in (int, float) for p in v):
            return complex(v[0], v[1])
        if tag == "r" and type(v) is list and len(v) == 3 and all(type(p) is int for p in v) and v[2] != 0:
            return range(v[0], v[1], v[2])
        if tag == "h" and type(v) is int and make_handle is not None:
            return make_handle(v)
        raise WireError(f"bad wire tag {tag!r}")

    return dec(obj, 0)


def wire_dumps(obj) -> bytes:
    return (_json.dumps(obj, separators=(",", ":")) + "\n").encode()


def wire_loads(line: bytes):
    try:
        return _json.loads(line)
    except (ValueError, RecursionError) as e:  # includes over-long integers
        raise WireError(f"unreadable message: {type(e).__name__}") from None
