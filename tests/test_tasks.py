"""Tasks: arith difficulty and split, count's exact-run reward, GSM8K gold answers and the answer rule, `rapidbench grade`."""

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


def test_arith_default_problems_are_pinned():
    # Committed sweeps were run on these exact problems: a task option added later must not move them.
    import hashlib

    t = make("arith")
    text = "\n".join(p.prompt + str(p.answer) for p in t.train_problems() + t.test_problems())
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == "4f6222ea3de23066"


def test_arith_chains_sum_every_term_and_hold_out_whole_chains():
    from rapidbench.config import build

    cls = TASKS.get("arith")
    t = cls(build(cls.Options, {"ops": ["+"], "terms": 4}, "task_args"))
    train, test = t.train_problems(), t.test_problems()
    for p in train + test:
        assert len(p.meta["operands"]) == 4 and p.answer == sum(p.meta["operands"])
        assert all(str(n) in p.prompt for n in p.meta["operands"])
    assert not {tuple(p.meta["operands"]) for p in train} & {tuple(p.meta["operands"]) for p in test}
    assert t.grade(test[0], f"so the total is {test[0].answer}").passed
    mixed = cls(build(cls.Options, {"terms": 3}, "task_args")).train_problems()  # products stay a * b
    assert {p.meta["op"] for p in mixed} == {"+", "*"} and all("operands" in p.meta for p in mixed if p.meta["op"] == "+")
    with pytest.raises(ValueError, match="at least 2 numbers"):
        cls(build(cls.Options, {"terms": 1}, "task_args"))


def test_count_problems_agree_with_their_prompts_and_hold_out_whole_ranges():
    from rapidbench.config import build

    cls = TASKS.get("count")
    t = cls(build(cls.Options, {"steps": [1, 3], "down": True}, "task_args"))
    train, test = t.train_problems(), t.test_problems()
    ranges = lambda ps: {(min(p.answer), abs(p.meta["step"]), p.meta["length"]) for p in ps}  # noqa: E731
    assert not ranges(train) & ranges(test)  # a run's reverse is in its split too
    assert len({p.prompt for p in test}) == len(test) == 200  # distinct held-out runs
    for p in train + test:
        nums = p.answer
        assert len(nums) == p.meta["length"] and 30 <= len(nums) <= 40 and 1 <= min(nums) and max(nums) <= 999
        assert all(b - a == p.meta["step"] for a, b in zip(nums, nums[1:]))
        assert f"from {nums[0]}" in p.prompt and f"to {nums[-1]}." in p.prompt
    assert {p.meta["step"] for p in train} == {1, 3, -1, -3}
    for bad, match in (({"lengths": [40, 30]}, "lengths"), ({"steps": [0]}, "positive"),
                       ({"steps": [30]}, "<= 999"), ({"test_fraction": 0.0}, "test_fraction"),
                       ({"lengths": [30], "start_max": 1}, "split empty")):
        with pytest.raises(ValueError, match=match):
            cls(build(cls.Options, bad, "task_args"))


def test_count_passes_only_the_exact_run_and_gives_partial_credit_below():
    t = make("count")
    p = t.test_problems()[0]
    right, n = ", ".join(map(str, p.answer)), len(p.answer)
    for ok in (right, right.replace(", ", "\n") + "\n", "".join(f"- {x}\n" for x in p.answer),
               f"Here are the {n} numbers from {p.answer[0]} to {p.answer[-1]}: {right}. Done."):
        assert t.grade(p, ok).passed, ok  # any separators; an introduction is text, whatever it says
    skip = p.answer[:5] + p.answer[6:]
    for wrong, reward in ((f"{p.answer[0]}, {right}", 0.5 * n / (n + 1)),  # no word between: all one run
                          (f"{right}. That is 1000 numbers.", 0.0),  # the answer is the last run
                          (f"{right}, {p.answer[-1] + 1}", 0.5 * n / (n + 1)),  # ran past the end
                          (", ".join(map(str, p.answer[:-1])), 0.5 * (n - 1) / n),  # stopped one early
                          (", ".join(map(str, skip)), 0.5 * (n - 1) / n),  # skipped one: costs one, not the rest
                          (", ".join(map(str, p.answer[:6])), 0.5 * 6 / n),
                          (f"{p.answer[0]}, " * 700, 0.5 / 700)):  # spam earns nothing
        g = t.grade(p, wrong)
        assert (g.passed, g.status, g.reward) == (False, "fail", pytest.approx(reward)), wrong
    assert t.grade(p, "I cannot count.").status == "no_answer"
    assert not t.grade(p, "9" * 5000).passed  # a huge literal is no crash


def test_count_without_run_on_credit_pays_nothing_past_the_end_and_the_same_below_it():
    from rapidbench.config import build

    cls = TASKS.get("count")
    t = cls(build(cls.Options, {"down": True, "run_on_credit": False}, "task_args"))
    default = cls(build(cls.Options, {"down": True}, "task_args"))
    for p in [next(p for p in t.test_problems() if p.meta["step"] == s and min(p.answer) > 3) for s in (1, -1)]:
        a, step, n = p.answer, p.meta["step"], len(p.answer)
        past = [a + [a[-1] + step * k for k in (1, 2, 3)],  # the plateau: counts on past the end
                a[:-1] + [a[-1] + step],  # skipped the last number and ran on
                a + [a[0]],  # wrote the last number, then more
                [a[0] - step] + a + [a[-1] + step]]  # wrong at both ends
        for run in past:
            text = ", ".join(map(str, run))
            g = t.grade(p, text)
            assert (g.reward, g.passed) == (0.0, False) and "ran past" in g.detail, run
            assert default.grade(p, text).reward > 0  # the default still pays it
        for run, reward in ((a, 1.0), (a[:-1], 0.5 * (n - 1) / n), (a[:5] + a[6:], 0.5 * (n - 1) / n),
                            ([a[0] - step] + a, 0.5 * n / (n + 1)), (a[:3] + a[2:], 0.5 * n / (n + 1))):
            text = ", ".join(map(str, run))  # within the end: what the default pays
            assert t.grade(p, text).reward == pytest.approx(reward) == default.grade(p, text).reward, run


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


def test_task_probe_counts_passes_cuts_and_mixed_groups(benchmark_script):
    """benchmarks/task_probe.py's summary on hand-made completions of the real count task."""
    from rapidbench.rollouts import Completion

    probe = benchmark_script("task_probe")
    t = make("count")
    problems = t.test_problems()[:2]
    right = [", ".join(map(str, p.answer)) for p in problems]
    texts = [(0, right[0], 10, "stop"), (0, "no idea", 4, "stop"),  # problem 0: mixed
             (1, right[1], 12, "stop"), (1, right[1], 30, "length")]  # problem 1: both right, one cut
    comps = [Completion(i, [0] * n, text, [0.0] * n, why) for i, text, n, why in texts]
    row = probe.summarise(t, problems, comps, samples=2, limit=30)
    assert (row["mean_tokens"], row["cut_share"], row["pass"], row["mixed_share"]) == (14.0, 0.25, 0.75, 0.5)
    assert probe.parse_variant('sum3={"terms": 3}') == ("sum3", {"terms": 3})
    for bad in ("sum3", 'sum3={"terms": 3', "sum3=[1]"):
        with pytest.raises(SystemExit, match="label="):
            probe.parse_variant(bad)
