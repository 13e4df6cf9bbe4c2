"""MBPP through the sandbox: reference solutions pass 417 of 427; the 10 known failures are
reported by id, not hidden; the split is deterministic; code extraction."""

from __future__ import annotations

import pytest

from rapidbench.registry import TASKS
from rapidbench.tasks.mbpp import extract_code

KNOWN_FAILURES = [98, 124, 137, 139, 163, 233, 246, 248, 276, 300]  # ../shared/data/README.md


@pytest.fixture(scope="module")
def mbpp():
    cls = TASKS.get("mbpp")
    return cls(cls.Options())


def test_reference_solutions(mbpp):
    probs = mbpp.train_problems() + mbpp.test_problems()
    assert len(probs) == 427
    grades = mbpp.grade_many(probs, [p.meta["reference"] for p in probs])
    failed = sorted(int(p.id) for p, g in zip(probs, grades) if not g.passed)
    for p, g in zip(probs, grades):
        if not g.passed:
            print(f"MBPP {p.id}: {g.status}: {g.detail[:100]}")
    assert len(probs) - len(failed) == 417
    assert failed == KNOWN_FAILURES


def test_split_is_deterministic_70_30(mbpp):
    cls = TASKS.get("mbpp")
    again = cls(cls.Options())
    assert [p.id for p in mbpp.test_problems()] == [p.id for p in again.test_problems()]
    assert (len(mbpp.train_problems()), len(mbpp.test_problems())) == (299, 128)
    assert not {p.id for p in mbpp.train_problems()} & {p.id for p in mbpp.test_problems()}
    p = mbpp.problem("2")
    assert p.answer[0] in p.prompt  # the first test shows the function name


def test_extract_code():
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone") == "def f():\n    return 1\n"
    assert extract_code("```\nx = 1\n```") == "x = 1\n"
    assert extract_code("```py\ny = 2\n```\n```python\nz = 3\n```") == "y = 2\n"
    assert extract_code("def g():\n    pass") == "def g():\n    pass"
    assert extract_code("```python\ndef h():\n    return 2") == "def h():\n    return 2"  # unterminated fence


def test_wrong_and_hostile_completions_fail(mbpp):
    p = mbpp.problem("2")
    g = mbpp.grade_many([p, p, p], ["```python\nimport sys\nsys.exit(0)\n```", "not code at all", "while True: pass"])
    assert [x.passed for x in g] == [False, False, False]
