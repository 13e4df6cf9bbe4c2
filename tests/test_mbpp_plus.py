"""MBPP+ through the sandbox: every reference answers and passes its own inputs, the plus inputs
catch what the base asserts miss, EvalPlus's comparison rules (atol, float tolerance, special
oracles), the split and the prompts, the CLI's detail."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rapidbench.registry import TASKS
from rapidbench.tasks.mbpp_plus import CHECK


@pytest.fixture(scope="module")
def task():
    cls = TASKS.get("mbpp-plus")
    return cls(cls.Options())


# Mbpp/255 (combinations_colors) answers some plus inputs with up to 1.66M tuples of 77 colours
# (25-120 MB as data; 1.1 GB in memory for one): past the sandbox's 16 MiB reply and 512 MiB
# address-space limits, so its reference cannot pass its own inputs here. Reported, not hidden.
KNOWN_FAILURES = ["Mbpp/255"]


# References slower than this on the recording machine are graded in the slow test: here 13 of the
# 399 (Mbpp/599 22 s, 255 11 s, 630 9 s, ...), ~77 of the ~130 s all references take, which the
# default suite (~15 min on 2 cores) cannot spare. Each side of the split is checked the same way.
QUICK_S = 1.0


def _references_fail_only_where_known(task, quick: bool):
    probs = [p for p in task.train_problems() + task.test_problems()
             if (task._expected[p.id]["time_s"] <= QUICK_S) == quick]
    grades = task.grade_many(probs, [p.meta["reference"] for p in probs])
    failed = {p.id: g.detail for p, g in zip(probs, grades) if not g.passed}
    print("references that fail their own inputs:", failed)
    assert sorted(failed) == [k for k in KNOWN_FAILURES if k in {p.id for p in probs}]
    return probs


def test_every_reference_answers_and_quick_ones_pass_their_own_inputs(task):
    probs = task.train_problems() + task.test_problems()
    assert len(probs) == 399
    assert sorted(task.reference_failures()) == KNOWN_FAILURES  # the rest answered every input in the sandbox
    assert len(_references_fail_only_where_known(task, quick=True)) > 350  # most of them, on any host


@pytest.mark.slow
def test_slow_references_pass_their_own_inputs(task):
    _references_fail_only_where_known(task, quick=False)


def test_time_limits_scale_with_the_references_own_time(task):
    """EvalPlus's rule: 4 x the reference's time on this machine, at least timeout_s, at most the
    recording limit, so no reference (Mbpp/599 sums ranges of 10^8 for ~22 s here) runs past its own."""
    from rapidbench.tasks.mbpp_plus import RECORD_WALL_S

    probs = task.train_problems() + task.test_problems()
    for p in probs:
        t, limit = task._expected[p.id]["time_s"], task.time_limit(p)
        assert limit == max(task.options.timeout_s, min(RECORD_WALL_S, 4 * t)), p.id
        assert limit >= min(t, RECORD_WALL_S) and task.job(p, "").wall_s == limit


def test_an_input_the_reference_did_not_answer_pays_nothing(task):
    """Mbpp/255's reference runs past the sandbox's limits on its largest inputs, so their expected
    value is missing (None). A program that knows those inputs and returns None on them, the
    reference's answer elsewhere, must not collect the reward."""
    p = task.problem("Mbpp/255")
    answered = task._expected[p.id]["ok"]
    bad = {repr((list(a[0]), a[1])) for a, ok in zip(p.meta["base"] + p.meta["plus"], answered) if not ok}
    assert bad
    code = ("```python\nfrom itertools import combinations_with_replacement\nBAD = %r\n"
            "def combinations_colors(l, n):\n    if repr((list(l), n)) in BAD:\n        return None\n"
            "    return list(combinations_with_replacement(l, n))\n```" % bad)
    g = task.grade(p, code)
    assert not g.passed and g.reward == 0.0, g.detail


def test_split_is_70_30_seed_42_and_deterministic(task):
    cls = TASKS.get("mbpp-plus")
    again = cls(cls.Options())
    assert (len(task.train_problems()), len(task.test_problems())) == (279, 120)
    assert [p.id for p in task.test_problems()] == [p.id for p in again.test_problems()]
    assert not {p.id for p in task.train_problems()} & {p.id for p in task.test_problems()}


def test_right_on_the_base_asserts_wrong_on_plus_inputs_gets_nothing(task):
    p = task.problem("Mbpp/2")
    # right for the three base inputs (4-tuples), wrong when the inputs are shorter
    code = ("```python\ndef similar_elements(a, b):\n    if len(a) != 4:\n        return (0,)\n"
            "    return tuple(set(a) & set(b))\n```")
    g = task.grade(p, code)
    assert g.reward == 0.0 and g.detail.startswith("base 3/3, plus ") and not g.detail.startswith("base 3/3, plus 0/")
    assert task.grade(p, f"```python\n{p.meta['reference']}\n```").reward == 1.0


def test_float_answers_within_atol_pass_and_outside_fail(task):
    p = task.problem("Mbpp/139")  # circle_circumference, atol 1e-4
    ok = "```python\nimport math\ndef circle_circumference(r):\n    return 2 * math.pi * r + 5e-5\n```"
    off = "```python\nimport math\ndef circle_circumference(r):\n    return 2 * math.pi * r + 1e-3\n```"
    assert task.grade(p, ok).passed and not task.grade(p, off).passed


def test_evalplus_comparison_rules():
    ns: dict = {}
    exec(CHECK, ns)
    check = ns["check"]
    assert check(1.00005, 1.0, ["exact", 1e-4, None]) and not check(1.0002, 1.0, ["exact", 1e-4, None])
    assert check(1.0000005, 1.0, ["exact", 0.0, None])  # floats get atol 1e-6 even where the task has none
    assert not check(1.00001, 1.0, ["exact", 0.0, None])
    assert not check(1, 1.0000001, ["exact", 0.0, None])  # an int is not a float: same type required
    assert check([1.0, 2.0000001], [1.0, 2.0], ["exact", 0.0, None]) and not check([1.0], [1.0, 2.0], ["exact", 1e-4, None])
    assert not check(float("nan"), float("nan"), ["exact", 1e-4, None])  # as numpy.allclose
    assert check((3, 4), (4, 3), ["set", 0.0, None]) and not check((3,), (4, 3), ["set", 0.0, None])
    assert check(True, True, ["not_none", 0.0, None]) and check("a match", True, ["not_none", 0.0, None])
    assert not check(None, True, ["not_none", 0.0, None])
    assert check(0, 5, ["or_zero", 0.0, None]) and check(7, 3, ["or_alt", 0.0, 7]) and check("x", 3, ["any", 0.0, None])
    assert check(10.00005, 3.0, ["or_alt_close", 1e-4, 10.0]) and not check(10.1, 3.0, ["or_alt_close", 1e-4, 10.0])


def test_prompts_for_instruct_and_base_models():
    cls = TASKS.get("mbpp-plus")
    base = cls(cls.Options(chat_template=False))
    p = base.problem("Mbpp/2")
    assert p.prompt.startswith("You are an expert Python programmer") and p.prompt.endswith("```python\n")
    assert "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)" in p.prompt
    # a base model continues the open block: its code ends at the closing fence
    assert base.code_of("def f():\n    return 1\n```\nThis works because...") == "def f():\n    return 1\n"
    instruct = cls(cls.Options())
    assert "```python code block" in instruct.problem("Mbpp/2").prompt


def test_training_uses_the_documented_subset_and_evaluation_everything():
    cls = TASKS.get("mbpp-plus")
    t = cls(cls.Options(train_plus_inputs=5))
    train, test = t.train_problems()[0], t.test_problems()[0]
    assert len(t.job(train, "").cases) == len(train.meta["base"]) + 5
    assert len(t.job(test, "").cases) == len(test.meta["base"]) + len(test.meta["plus"])


def test_grade_cli_reports_base_and_plus_counts(task, tmp_path):
    f = tmp_path / "c.txt"
    f.write_text(f"```python\n{task.problem('Mbpp/2').meta['reference']}\n```\n")
    r = subprocess.run([sys.executable, "-m", "rapidbench", "grade", "--task", "mbpp-plus", "--id", "Mbpp/2",
                        "--completion", str(f)], capture_output=True, text=True, timeout=300)
    out = json.loads(r.stdout)
    n_plus = len(task.problem("Mbpp/2").meta["plus"])
    assert out["passed"] and out["detail"] == f"base 3/3, plus {n_plus}/{n_plus} inputs passed"
