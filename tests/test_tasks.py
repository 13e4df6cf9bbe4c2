"""Tasks: arith difficulty and split, GSM8K gold answers and the answer rule, `rapidbench grade`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rapidbench.registry import TASKS
from rapidbench.tasks.gsm8k import extract_answer


def make(name):
    cls = TASKS.get(name)
    return cls(cls.Options())


def test_arith_is_seeded_and_held_out():
    a, b = make("arith"), make("arith")
    assert [p.prompt for p in a.test_problems()] == [p.prompt for p in b.test_problems()]
    train = {(p.meta["a"], p.meta["op"], p.meta["b"]) for p in a.train_problems()}
    test = {(p.meta["a"], p.meta["op"], p.meta["b"]) for p in a.test_problems()}
    assert not train & test  # held-out triples never appear in training
    p = a.test_problems()[0]
    assert a.grade(p, f"The answer is {p.answer}.").passed
    assert not a.grade(p, f"{p.answer} or maybe {p.answer + 1}").passed  # only the last number counts
    assert a.grade(p, "no idea").status == "no_answer"


def test_arith_ops_keep_only_the_named_operations():
    from rapidbench.config import build

    cls = TASKS.get("arith")
    t = cls(build(cls.Options, {"ops": ["+"], "levels": [1]}, "task_args"))
    assert {p.meta["op"] for p in t.train_problems() + t.test_problems()} == {"+"}
    with pytest.raises(ValueError, match="no operation among ops"):
        cls(build(cls.Options, {"ops": ["%"]}, "task_args"))


def test_gsm8k_sizes_and_every_gold_answer_grades_one():
    t = make("gsm8k")
    train, test = t.train_problems(), t.test_problems()
    assert (len(train), len(test)) == (7473, 1319)
    for p in train + test:
        gold = p.meta["solution"]  # the reference solution text, ending in "#### <answer>"
        assert t.grade(p, gold).reward == 1.0, p.id
        assert t.grade(p, f"#### {p.answer + 1:g}").reward == 0.0
    assert t.problem("test-0").prompt.startswith(test[0].prompt[:40])


@pytest.mark.parametrize("text,want", [
    ("so 3 + 4 = 7\n#### 7", 7.0),
    ("#### 1,234", 1234.0),
    ("#### $18.", 18.0),
    ("the answer is \\boxed{42}", 42.0),
    ("first 5, then 6 and finally 9", 9.0),
    ("#### 3 but then 10 more", 3.0),  # #### wins over a later number
    ("nothing here", None),
])
def test_gsm8k_answer_rule(text, want):
    assert extract_answer(text) == want


def test_grade_cli(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("Natalia sold 48/2 = 24 clips in May. 48+24 = 72\n#### 72")
    r = subprocess.run([sys.executable, "-m", "rapidbench", "grade", "--task", "gsm8k", "--id", "train-0",
                        "--completion", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out == {"task": "gsm8k", "id": "train-0", "reward": 1.0, "passed": True, "status": "pass",
                   "detail": "expected 72, got 72"}
    r = subprocess.run([sys.executable, "-m", "rapidbench", "grade", "--task", "gsm8k", "--id", "test-99999",
                        "--completion", "-"], input="#### 1", capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no problem 'test-99999'" in r.stderr
