"""`math`: competition mathematics graded with math-verify (LaTeX, fractions, intervals, tuples, sets).

Offline data is MATH-500 (500 problems), split 70/30 with seed 42 (350 train / 150 test): a small
train set, documented as such. With `task_args.data_source=hub` the full MATH train set
(DigitalLearningGmbH/MATH-lighteval) trains and MATH-500 (HuggingFaceH4/MATH-500) tests.

Only the final answer counts: the content of the *last* `\\boxed{...}` (else the last line) is
parsed, as one expression, so a completion listing several candidates gets no credit for one of
them. Grading runs in worker processes with a hard time limit (the worker is killed and replaced
on overrun), so it works from any thread and a pathological answer cannot hang it; math-verify's
own signal-based timeouts are off (they only work in a main thread).
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from rapidbench.registry import register_task
from rapidbench.tasks.base import Grade, Problem, Task, TaskOptions, seeded_split

DATA = Path(__file__).resolve().parent / "data"


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (or \\fbox{...}), braces balanced; None if there is none."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def final_answer(completion: str) -> str:
    boxed = last_boxed(completion)
    if boxed is not None:
        return boxed
    lines = [ln for ln in completion.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _verify(gold: str, answer: str) -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    cfg = [LatexExtractionConfig(), ExprExtractionConfig()]
    g = parse("$" + gold + "$", extraction_config=cfg, parsing_timeout=None)
    a = parse("$" + answer + "$", extraction_config=cfg, parsing_timeout=None, extraction_mode="first_match")
    if not g or not a:
        return False
    return bool(verify(g, a, timeout_seconds=None))


_WORKER = """
import json, sys
sys.path[:0] = {path!r}
from rapidbench.tasks.math_task import _verify
for line in sys.stdin:
    gold, answer = json.loads(line)
    try:
        out = ["ok", _verify(gold, answer)]
    except Exception as e:  # a parser error is a wrong answer, not a crash
        out = ["error", (type(e).__name__ + ": " + str(e))[:200]]
    sys.stdout.write(json.dumps(out) + "\\n")
    sys.stdout.flush()
"""


class VerifyPool:
    """Worker processes that verify answers under a hard per-answer time limit.

    Plain subprocesses speaking JSON lines (not multiprocessing): they need no importable
    __main__, and an overrunning one is killed and replaced while the others keep serving.
    """

    def __init__(self, size: int = 2, timeout_s: float = 5.0):
        self.timeout_s = timeout_s
        self._free = [self._start() for _ in range(size)]
        self._cv = threading.Condition()

    @staticmethod
    def _start() -> subprocess.Popen:
        src = _WORKER.format(path=[p for p in sys.path if p])
        return subprocess.Popen([sys.executable, "-c", src], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def check(self, gold: str, answer: str) -> tuple[str, bool | str]:
        with self._cv:
            while not self._free:
                self._cv.wait()
            proc = self._free.pop()
        try:
            try:
                proc.stdin.write(json.dumps([gold, answer]) + "\n")
                proc.stdin.flush()
                ready, _, _ = select.select([proc.stdout], [], [], self.timeout_s)
                line = proc.stdout.readline() if ready else ""
            except (BrokenPipeError, OSError):
                ready, line = [], ""
            if line:
                status, value = json.loads(line)
                return status, value
            proc.kill()  # overran (or died): replace the worker
            proc.wait()
            proc = self._start()
            return ("timeout", f"grading exceeded {self.timeout_s:g} s") if ready == [] else ("error", "grader worker died")
        finally:
            with self._cv:
                self._free.append(proc)
                self._cv.notify()


@dataclass
class MATHOptions(TaskOptions):
    data_source: Literal["local", "hub"] = "local"  # "local" (MATH-500, split 70/30) or "hub"
    test_fraction: float = 0.3
    split_seed: int = 42
    grade_timeout_s: float = 5.0
    instruction: str = "\nPut your final answer in \\boxed{}."


_POOL: VerifyPool | None = None


@register_task("math")
class MATH(Task):
    """MATH-500 offline (70/30 split, seed 42), full MATH from the hub; graded with math-verify."""

    Options = MATHOptions

    def __init__(self, options: MATHOptions, seed: int = 0):
        super().__init__(options, seed)
        from datasets import load_dataset

        if options.data_source == "local":
            rows = list(load_dataset("json", data_files=str(DATA / "math500_test.jsonl.gz"), split="train"))
            self._train, self._test = seeded_split([self._problem(r) for r in rows], options.test_fraction,
                                                   options.split_seed)
        else:  # hub
            self._train = [self._problem(r, f"train/{i}") for i, r in
                           enumerate(load_dataset("DigitalLearningGmbH/MATH-lighteval", split="train"))]
            self._test = [self._problem(r) for r in load_dataset("HuggingFaceH4/MATH-500", split="test")]

    def _problem(self, r, fallback_id: str = "") -> Problem:
        answer = r.get("answer") or last_boxed(r["solution"]) or ""
        return Problem(id=r.get("unique_id") or fallback_id, prompt=r["problem"] + self.options.instruction,
                       answer=answer, meta={"solution": r["solution"]})

    def train_problems(self) -> list[Problem]:
        return self._train

    def test_problems(self) -> list[Problem]:
        return self._test

    def grade(self, problem: Problem, completion: str) -> Grade:
        global _POOL
        if _POOL is None:
            _POOL = VerifyPool(timeout_s=self.options.grade_timeout_s)
        answer = final_answer(completion)
        if not answer.strip():
            return Grade(0.0, False, "no_answer", "no final answer")
        status, ok = _POOL.check(problem.answer, answer)
        if status != "ok":
            return Grade(0.0, False, status, str(ok))
        return Grade(float(ok), bool(ok), "pass" if ok else "fail", f"expected {problem.answer}, got {answer[:100]}")

    def grade_many(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Grade]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as ex:  # the verify pool's workers run in parallel
            return list(ex.map(self.grade, problems, completions))
