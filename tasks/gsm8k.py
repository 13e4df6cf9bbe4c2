"""`gsm8k`: grade-school math word problems (Cobbe et al., 2021), train 7,473 / test 1,319.

Answer rule, in order: the number after the last `####` in the completion; else the content of the
last `\\boxed{...}`; else the last number in the text. Compared numerically with the gold answer
(the number after `####` in the dataset), commas and a trailing period ignored.
Ids are `train-<row>` / `test-<row>` (the split and the row index in the original file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from pathlib import Path

from rapidbench.registry import register_task
from rapidbench.tasks.arith import last_number
from rapidbench.tasks.base import Grade, Problem, Task, TaskOptions

DATA = Path(__file__).resolve().parent / "data"
_HASHES = re.compile(r"####\s*\$?\s*(-?[\d,]*\.?\d+)")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def to_number(text: str) -> float | None:
    text = text.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        return float(text)
    except ValueError:
        return None


def extract_answer(completion: str) -> float | None:
    """The final answer by the rule in the module docstring; None when there is no number."""
    hashes = _HASHES.findall(completion)
    if hashes:
        return to_number(hashes[-1])
    boxed = _BOXED.findall(completion)
    if boxed:
        got = to_number(boxed[-1])
        if got is not None:
            return got
    return last_number(completion)


@dataclass
class GSM8KOptions(TaskOptions):
    data_source: Literal["local", "hub"] = "local"  # "local" (shipped copy) or "hub" (openai/gsm8k, where reachable)
    instruction: str = "\nSolve step by step, then give the final answer after ####."


@register_task("gsm8k")
class GSM8K(Task):
    """GSM8K grade-school math (shipped, MIT); reward from the final numeric answer."""

    Options = GSM8KOptions

    def __init__(self, options: GSM8KOptions, seed: int = 0):
        super().__init__(options, seed)
        self._splits: dict[str, list[Problem]] = {}

    def _load(self, split: str) -> list[Problem]:
        if split not in self._splits:
            from datasets import load_dataset

            if self.options.data_source == "hub":
                rows = load_dataset("openai/gsm8k", "main", split=split)
            else:
                rows = load_dataset("json", data_files=str(DATA / f"gsm8k_{split}.jsonl.gz"), split="train")
            self._splits[split] = [
                Problem(id=f"{split}-{i}", prompt=r["question"] + self.options.instruction,
                        answer=to_number(r["answer"].split("####")[-1]), meta={"solution": r["answer"]})
                for i, r in enumerate(rows)
            ]
        return self._splits[split]

    def train_problems(self) -> list[Problem]:
        return self._load("train")

    def test_problems(self) -> list[Problem]:
        return self._load("test")

    def problem(self, problem_id: str) -> Problem:
        split, _, idx = problem_id.partition("-")
        if split not in ("train", "test") or not idx.isdigit():
            raise KeyError(f"no problem '{problem_id}' (gsm8k ids look like test-0 or train-12)")
        rows = self._load(split)
        if int(idx) >= len(rows):
            raise KeyError(f"no problem '{problem_id}' ({split} has {len(rows)} problems)")
        return rows[int(idx)]

    def grade(self, problem: Problem, completion: str) -> Grade:
        got = extract_answer(completion)
        if got is None:
            return Grade(0.0, False, "no_answer", "no number in the completion")
        ok = abs(got - problem.answer) < 1e-6 * max(1.0, abs(problem.answer))
        return Grade(float(ok), ok, "pass" if ok else "fail", f"expected {problem.answer:g}, got {got:g}")
