"""The task contract: splits, prompts, grading. Tasks know nothing of algorithms or samplers."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence, TypeVar

T = TypeVar("T")


def seeded_split(items: Sequence[T], test_fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """(train, test): shuffle a copy with Random(seed), the first round(n * fraction) are test."""
    order = list(items)
    random.Random(seed).shuffle(order)
    n_test = round(len(order) * test_fraction)
    return order[n_test:], order[:n_test]


def held_out(key: str, fraction: float) -> bool:
    """Whether the item named `key` is in the test split: a stable hash of the key (not Python's
    randomised one, so the split never changes between processes) below `fraction`."""
    h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return (h % 10_000) < fraction * 10_000


@dataclass
class Problem:
    id: str  # native id (MBPP task_id, HumanEval/0, test-12, ...)
    prompt: str  # the user message (or raw prompt for base models)
    answer: Any  # whatever grade() needs: a number, tests, ...
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Grade:
    reward: float  # in [0, 1]
    passed: bool
    status: str  # "pass" | "fail" | "no_answer" | "timeout" | "error"
    detail: str = ""


@dataclass
class TaskOptions:
    """Options every task accepts (`task_args.*`)."""

    chat_template: bool = True  # instruct models: wrap the prompt in the tokenizer's chat template


class Task:
    Options: ClassVar[type] = TaskOptions
    uses_sandbox: ClassVar[bool] = False

    def __init__(self, options: Any, seed: int = 0):
        self.options = options
        self.seed = seed

    # -- data -------------------------------------------------------------------------------------
    def train_problems(self) -> list[Problem]:
        raise NotImplementedError

    def test_problems(self) -> list[Problem]:
        raise NotImplementedError

    def problem(self, problem_id: str) -> Problem:
        for p in [*self.test_problems(), *self.train_problems()]:
            if p.id == problem_id:
                return p
        raise KeyError(f"no problem '{problem_id}'")

    # -- prompts ----------------------------------------------------------------------------------
    def render_prompt(self, problem: Problem, tokenizer: Any) -> str:
        """Chat template for instruct models (when the tokenizer has one), plain text otherwise."""
        if self.options.chat_template and getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(
                [{"role": "user", "content": problem.prompt}], tokenize=False, add_generation_prompt=True
            )
        return problem.prompt

    # -- grading ----------------------------------------------------------------------------------
    def grade(self, problem: Problem, completion: str) -> Grade:
        raise NotImplementedError

    def grade_many(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Grade]:
        return [self.grade(p, c) for p, c in zip(problems, completions)]
