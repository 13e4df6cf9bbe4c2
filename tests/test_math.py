"""MATH with math-verify: equivalence table, final-answer-only, a hard time limit from any thread,
deterministic split, and HumanEval canonical solutions in the sandbox."""

from __future__ import annotations

import threading
import time

import pytest

from rapidbench.registry import TASKS
from rapidbench.tasks.base import Problem
from rapidbench.tasks.math_task import MATH, MATHOptions, final_answer, last_boxed

EQUIVALENT = [
    ("\\frac{1}{2}", "0.5"), ("\\frac{1}{2}", "\\dfrac{1}{2}"), ("\\frac{3}{4}", "0.75"), ("2\\sqrt{2}", "\\sqrt{8}"),
    ("[1,2)", "[1, 2)"), ("(0,3)", "(0, 3)"), ("\\{1,2,3\\}", "\\{3,2,1\\}"), ("x^2+2x+1", "(x+1)^2"),
    ("\\pi", "\\pi"), ("\\frac{\\pi}{2}", "\\frac{1}{2}\\pi"), ("10", "10.0"), ("-3", "-3"), ("1000", "1{,}000"),
]
NOT_EQUIVALENT = [
    ("\\frac{1}{2}", "\\frac{1}{3}"), ("[1,2)", "[1,2]"), ("(1,2)", "(2,1)"), ("2\\sqrt{2}", "2\\sqrt{3}"),
    ("\\{1,2\\}", "\\{1,2,3\\}"), ("x^2+1", "x^2-1"), ("5", "6"), ("\\pi", "3"),
]


@pytest.fixture(scope="module")
def math_task():
    return MATH(MATHOptions(grade_timeout_s=3.0))


def prob(answer: str) -> Problem:
    return Problem("t", "", answer)


@pytest.mark.parametrize("gold,got", EQUIVALENT)
def test_equivalent(math_task, gold, got):
    assert math_task.grade(prob(gold), f"so the answer is $\\boxed{{{got}}}$").passed


@pytest.mark.parametrize("gold,got", NOT_EQUIVALENT)
def test_not_equivalent(math_task, gold, got):
    assert not math_task.grade(prob(gold), f"\\boxed{{{got}}}").passed


def test_only_the_final_answer_counts(math_task):
    assert not math_task.grade(prob("2"), "maybe \\boxed{2}, or \\boxed{3}").passed  # the last one is 3
    assert not math_task.grade(prob("2"), "\\boxed{1, 2, 3}").passed
    assert math_task.grade(prob("3"), "maybe \\boxed{2}, or \\boxed{3}").passed
    assert last_boxed("a \\boxed{\\frac{1}{\\sqrt{2}}} b") == "\\frac{1}{\\sqrt{2}}"
    assert final_answer("no box\nfinal: 7") == "final: 7"
    assert math_task.grade(prob("1"), "").status == "no_answer"


def test_pathological_answer_returns_within_the_limit_from_a_worker_thread(math_task):
    out = {}

    def run():
        t0 = time.monotonic()
        out["grade"] = math_task.grade(prob("1"), "\\boxed{9^{9^{9^{9^{9^{9}}}}} - 9^{9^{9^{9^{9^{9}}}}} + 1}")
        out["s"] = time.monotonic() - t0

    th = threading.Thread(target=run)  # not the main thread: no signal-based timeout could work here
    th.start()
    th.join(60)
    assert not th.is_alive()
    assert out["grade"].status in ("timeout", "pass", "fail", "error")
    assert out["s"] < 3.0 + 10  # the limit plus generous slack: it only catches a hang
    assert math_task.grade(prob("\\frac{1}{2}"), "\\boxed{0.5}").passed  # the pool still serves


def test_split_and_gold(math_task):
    again = MATH(MATHOptions())
    assert [p.id for p in math_task.test_problems()] == [p.id for p in again.test_problems()]
    assert (len(math_task.train_problems()), len(math_task.test_problems())) == (350, 150)
    probs = math_task.test_problems()[:60]
    assert all(g.passed for g in math_task.grade_many(probs, [p.meta["solution"] for p in probs]))


def test_humaneval_canonical_solutions_pass():
    cls = TASKS.get("humaneval")
    he = cls(cls.Options())
    probs = he.test_problems()
    assert len(probs) == 164
    grades = he.grade_many(probs, [p.meta["reference"] for p in probs])
    assert [p.id for p, g in zip(probs, grades) if not g.passed] == []
    assert not he.grade(probs[0], "```python\ndef has_close_elements(numbers, threshold):\n    return True\n```").passed
    with pytest.raises(ValueError, match="only a test split"):
        he.train_problems()
