"""`mbpp-plus`: MBPP+ (EvalPlus; Liu et al., 2023), the RAPID paper's code benchmark.

Data: offline, the 399-problem MbppPlus.jsonl of EvalPlus's repository at commit 767efcc (Nov 2023,
Apache-2.0; tasks/data/README.md); `task_args.data_source=hub` reads `evalplus/mbppplus` v0.2.0
(378 problems, the release the paper used) where a hub is reachable. Split 70/30 with seed 42, as
the paper split v0.2.0 (264 / 114 there; 279 / 120 for the 399 offline).

Grading, as EvalPlus grades: the completion's function is called on every `base_input` (the
original MBPP asserts' arguments) and every `plus_input`, and each answer must equal the expected
output, which comes from running `canonical_solution` on the same input in the sandbox once
(cached under the rapidbench cache, keyed by the data and the Python version; never computed by
the graded program's process). Equal means EvalPlus's rules: `==`; for floats (or a task's `atol`)
the same type and length and numpy.allclose(rtol=1e-7, atol=max(atol, 1e-6 for floats)); and its
special oracles (set equality for some tasks, "not None" for tasks returning match objects, and
three more). Training rewards use the base inputs and the first `train_plus_inputs` plus inputs
(all by default); evaluation always uses every input. `detail` says how many base and plus inputs
passed.

Time limits, as EvalPlus sets them: from the reference's own time on this machine, measured when the
expected outputs are recorded (with a generous RECORD_WALL_S), a program gets `TIME_FACTOR` (EvalPlus's
`DEFAULT_GT_TIME_LIMIT_FACTOR`, 4) times that, and never less than `timeout_s`. One fixed limit
cannot serve: Mbpp/599's reference sums ranges of 10^8 and takes ~22 s on the AMX machine, past the
20 s of `timeout_s`, so with it on a slow host no program, the reference included, could pass
Mbpp/599. EvalPlus applies the factor per input with a 1 s floor and a 60 s cap per task; here it
applies to the whole run (one sandbox run per program), the floor is `timeout_s` and the cap is
RECORD_WALL_S, so a limit is never below the time the reference needed.

What comes from the `evalplus` package (installed without its dependencies): the per-task input
deserialisation (some inputs must become tuples, sets or complex numbers) and the special-oracle
tables. Not its execution: `evalplus.eval.unsafe_execute` runs the program in the grader's own
process, so the comparison rules run in our trusted evaluator instead (CHECK below, stdlib only).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rapidbench.registry import register_task
from rapidbench.tasks.base import Grade, Problem, seeded_split
from rapidbench.tasks.code import CodeTask, CodeTaskOptions
from rapidbench.tasks.mbpp import extract_code

DATA = Path(__file__).resolve().parent / "data" / "mbppplus_evalplus-767efcc.jsonl.gz"
RECORD_WALL_S = 120.0  # the reference's limit while its answers are recorded, and the cap of a program's limit

# Trusted code the evaluator runs (stdlib only): EvalPlus's comparison of an answer with the
# expected output (evalplus.eval.unsafe_execute), `extra` = [oracle kind, atol, alternative answer].
CHECK = r'''
import math

def _is_floats(x):
    if isinstance(x, float):
        return True
    return isinstance(x, (list, tuple)) and bool(x) and all(isinstance(i, float) for i in x)

def _close(a, b, atol, rtol=1e-7):
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y, atol, rtol) for x, y in zip(a, b))
    num = (int, float, bool)
    if isinstance(a, num) and isinstance(b, num):
        if math.isnan(a) or math.isnan(b):
            return False
        if math.isinf(a) or math.isinf(b):
            return a == b
        return abs(a - b) <= atol + rtol * abs(b)
    return False

def check(out, exp, extra):
    kind, atol, alt = extra
    if kind == "unanswered":  # the reference gave no answer to compare with: nothing can pass it
        return False
    exact = out == exp
    if kind == "any":
        exact = True
    elif kind == "or_zero":
        exact = exact or out == 0
    elif kind == "or_alt":
        exact = exact or out == alt
    elif kind == "or_alt_close":
        exact = exact or abs(out - alt) <= atol
    elif kind == "set":
        exact = set(out) == set(exp)
    elif kind == "not_none":
        exact = out == exp if isinstance(out, bool) else exp == (out is not None)
    if atol == 0 and _is_floats(exp):
        atol = 1e-6
    if not exact and atol != 0:
        if type(out) is not type(exp):
            return False
        if isinstance(exp, (list, tuple)) and len(out) != len(exp):
            return False
        return _close(out, exp, atol)
    return exact is True

def record(out):
    return out if isinstance(out, bool) else out is not None
'''


def oracle(entry_point: str) -> tuple[str, callable | None]:
    """EvalPlus's special oracle for a task (by its entry point), and the function giving the
    alternative answer it accepts, if any."""
    from evalplus.eval._special_oracle import (MBPP_OUTPUT_NOT_NONE_TASKS, MBPP_OUTPUT_SET_EQ_TASKS,
                                               _digit_distance_nums, _surface_Area)

    special = {"are_equivalent": ("any", None), "sum_div": ("or_zero", None),
               "surface_Area": ("or_alt_close", _surface_Area), "digit_distance_nums": ("or_alt", _digit_distance_nums)}
    if entry_point in special:
        return special[entry_point]
    if entry_point in MBPP_OUTPUT_SET_EQ_TASKS:
        return "set", None
    if entry_point in MBPP_OUTPUT_NOT_NONE_TASKS:
        return "not_none", None
    return "exact", None


@dataclass
class MBPPPlusOptions(CodeTaskOptions):
    data_source: Literal["local", "hub"] = "local"  # "local": 399 problems (EvalPlus 767efcc); "hub": v0.2.0 (378)
    test_fraction: float = 0.3
    split_seed: int = 42
    train_plus_inputs: int = -1  # plus inputs in a training reward (-1 = all); evaluation always uses all
    timeout_s: float = 20.0  # a program and all its inputs (~110 on average)


@register_task("mbpp-plus")
class MBPPPlus(CodeTask):
    """MBPP+ (EvalPlus, Apache-2.0): base + plus inputs against the reference's outputs; 70/30 split seed 42."""

    Options = MBPPPlusOptions

    def __init__(self, options: MBPPPlusOptions, seed: int = 0):
        super().__init__(options, seed)
        from evalplus.data.mbpp import mbpp_deserialize_inputs

        rows, source = self._rows(options)
        # what the expected outputs depend on: the rows as given (before deserialisation, whose sets
        # iterate in an order that changes from process to process) and the interpreter
        self._key = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]
        problems = []
        for r in rows:
            tid, entry = r["task_id"], r["entry_point"]
            inputs = [mbpp_deserialize_inputs(tid, _loaded(r[k])) for k in ("base_input", "plus_input")]
            kind, alt = oracle(entry)
            problems.append(Problem(id=tid, prompt=self._prompt(r), answer=None, meta={
                "entry_point": entry, "reference": r["canonical_solution"], "base": inputs[0], "plus": inputs[1],
                "kind": kind, "atol": float(r["atol"] or 0), "alt": [alt(*x) if alt else None for x in inputs[0] + inputs[1]],
                "first_test": _first_assert(r["assertion"])}))
        self.version = source
        self._expected = self._expected_outputs(problems, source)
        ordered = sorted(problems, key=lambda p: int(p.id.split("/")[1]))
        self._train, self._test = seeded_split(ordered, options.test_fraction, options.split_seed)
        self._test_ids = {p.id for p in self._test}

    @staticmethod
    def _rows(options: MBPPPlusOptions) -> tuple[list[dict], str]:
        if options.data_source == "hub":
            from datasets import load_dataset

            return list(load_dataset("evalplus/mbppplus", revision="v0.2.0", split="test")), "evalplus/mbppplus v0.2.0"
        with gzip.open(DATA, "rt") as f:
            return [json.loads(line) for line in f], "EvalPlus MbppPlus.jsonl @767efcc (399)"

    def _prompt(self, r: dict) -> str:
        text = r["prompt"].strip().strip("'\"").strip()
        test = _first_assert(r["assertion"])
        if self.options.chat_template:
            return f"{text}\nYour code should pass this test:\n{test}\nWrite the Python function in a ```python code block."
        # a base model continues a code block (the classic MBPP prompt); the code ends at the closing fence
        return (f"You are an expert Python programmer, and here is your task: {text} Your code should pass this "
                f"test:\n\n{test}\n```python\n")

    def code_of(self, completion: str) -> str:
        if self.options.chat_template:
            return extract_code(completion)
        return completion.split("```")[0]

    # -- expected outputs -----------------------------------------------------------------------
    def _expected_outputs(self, problems: list[Problem], source: str) -> dict[str, dict]:
        """Each problem's reference answers (wire data; `ok`: answered at all), from the sandbox, cached."""
        from rapidbench.models import cache_dir

        py = f"py{sys.version_info.major}.{sys.version_info.minor}"
        path = cache_dir() / "mbpp-plus" / f"expected-v2-{self._key}-{py}.json.gz"  # v2: with the reference's time
        if path.is_file():
            with gzip.open(path, "rt") as f:
                return json.load(f)
        from rapidbench.tasks.sandbox import Job

        jobs = [Job(p.meta["reference"], [], setup=CHECK, entry_points=(p.meta["entry_point"],),
                    cases=_cases(p, None, None), record=True, transform="record" if p.meta["kind"] == "not_none" else "",
                    wall_s=RECORD_WALL_S)
                for p in problems]
        verdicts = self.sandbox.run_many(jobs)
        expected = {p.id: {"out": v.outputs, "ok": v.results, "time_s": round(v.elapsed_s, 3)}
                    for p, v in zip(problems, verdicts)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with gzip.open(tmp, "wt") as f:
            json.dump(expected, f)
        tmp.replace(path)
        return expected

    def time_limit(self, problem: Problem) -> float:
        """A program's wall-clock limit on this problem: TIME_FACTOR x the reference's time, at least
        `timeout_s`, at most RECORD_WALL_S (see the module's docstring)."""
        from evalplus.config import DEFAULT_GT_TIME_LIMIT_FACTOR as TIME_FACTOR

        scaled = min(RECORD_WALL_S, TIME_FACTOR * self._expected[problem.id]["time_s"])
        return max(self.options.timeout_s, scaled)

    def reference_failures(self) -> dict[str, int]:
        """Problems whose reference did not answer every one of its own inputs: id -> inputs missed."""
        return {pid: e["ok"].count(False) for pid, e in self._expected.items() if not all(e["ok"])}

    # -- grading --------------------------------------------------------------------------------
    def job(self, problem: Problem, completion: str):
        from rapidbench.tasks.sandbox import Job

        n = self.options.train_plus_inputs
        limit = None if (problem.id in self._test_ids or n < 0) else n
        expected = self._expected[problem.id]
        return Job(self.code_of(completion), [], setup=CHECK, entry_points=(problem.meta["entry_point"],),
                   cases=_cases(problem, limit, expected["out"], expected["ok"]), check="check",
                   wall_s=self.time_limit(problem))

    def grade_many(self, problems, completions) -> list[Grade]:
        verdicts = self.sandbox.run_many([self.job(p, c) for p, c in zip(problems, completions)])
        out = []
        for p, v in zip(problems, verdicts):
            nb = len(p.meta["base"])
            counts = (f"base {sum(v.results[:nb])}/{nb}, plus {sum(v.results[nb:])}/{len(v.results) - nb} inputs passed"
                      if v.results else "")
            detail = f"{counts}; {v.detail}" if counts and not v.passed else (counts or v.detail)
            out.append(Grade(1.0 if v.passed else 0.0, v.passed, v.status, detail))
        return out

    def train_problems(self) -> list[Problem]:
        return self._train

    def test_problems(self) -> list[Problem]:
        return self._test


def _cases(p: Problem, limit: int | None, expected: list | None, answered: list | None = None) -> list[dict]:
    """The evaluator's cases: base inputs, then the first `limit` plus inputs (all for None). An
    input the reference did not answer (`answered` False) can be passed by no program: its expected
    value is None, which a program would otherwise match by returning None."""
    from rapidbench.tasks.sandbox.wire import wire_encode

    inputs = p.meta["base"] + (p.meta["plus"] if limit is None else p.meta["plus"][:limit])
    return [{"args": wire_encode(list(args)), "expected": expected[i] if expected else None,
             "extra": wire_encode([p.meta["kind"] if answered is None or answered[i] else "unanswered",
                                   p.meta["atol"], p.meta["alt"][i]])} for i, args in enumerate(inputs)]


def _loaded(x) -> list:
    x = json.loads(x) if isinstance(x, str) else x  # the hub stores the inputs as JSON text
    return x if isinstance(x, list) else list(x or [])  # Mbpp/793's plus_input is an empty {}


def _first_assert(assertion: str) -> str:
    return next((ln.strip() for ln in assertion.splitlines() if ln.strip().startswith("assert")), "")

