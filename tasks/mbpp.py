"""`mbpp`: sanitized MBPP (427 problems), split 70/30 with seed 42 as the RAPID paper split MBPP+.

Offline this is sanitized MBPP, not MBPP+: MBPP+ (EvalPlus) is a 378-problem subset of it with
many more tests per problem (the paper: 264 train / 114 test); here the 427 problems keep their
original 3 or so asserts, so scores are not comparable with MBPP+ numbers. The prompt shows the
problem text and the first test (which fixes the function name); code is taken from the first
fenced ```python block, else the first fenced block, else the raw completion; it is graded in the
sandbox against all tests. The tests take from the program only the functions the reference
defines and they use (`entry_points`); everything else in a test is the evaluator's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rapidbench.registry import register_task
from rapidbench.tasks.base import Problem, seeded_split
from rapidbench.tasks.code import CodeTask, CodeTaskOptions, entry_points

DATA = Path(__file__).resolve().parent / "data"
_FENCE = re.compile(r"```([a-zA-Z0-9_+-]*)[ \t]*\n(.*?)(?:```|$)", re.S)


def extract_code(completion: str) -> str:
    blocks = _FENCE.findall(completion)
    for lang, body in blocks:
        if lang.lower() in ("python", "py", "python3"):
            return body
    if blocks:
        return blocks[0][1]
    return completion


@dataclass
class MBPPOptions(CodeTaskOptions):
    data_source: Literal["local", "hub"] = "local"  # "local" (shipped copy) or "hub" (google-research-datasets/mbpp, sanitized)
    test_fraction: float = 0.3
    split_seed: int = 42


@register_task("mbpp")
class MBPP(CodeTask):
    """Sanitized MBPP (427, CC-BY-4.0), 70/30 split seed 42; graded in the sandbox."""

    Options = MBPPOptions

    def __init__(self, options: MBPPOptions, seed: int = 0):
        super().__init__(options, seed)
        from datasets import load_dataset

        if options.data_source == "local":
            rows = list(load_dataset("json", data_files=str(DATA / "mbpp_sanitized.jsonl.gz"), split="train"))
        else:  # hub: the same 427 problems, spread over the hub's four splits
            hub = load_dataset("google-research-datasets/mbpp", "sanitized")
            rows = [dict(r, text=r["prompt"], test_setup_code="\n".join(r.get("test_imports") or []))
                    for split in hub.values() for r in split]
        problems = [
            Problem(id=str(r["task_id"]), prompt=self._prompt(r), answer=list(r["test_list"]),
                    meta={"setup": r.get("test_setup_code") or "", "reference": r["code"],
                          "entry_points": entry_points(r["code"], r["test_list"])})
            for r in rows
        ]
        self._train, self._test = seeded_split(sorted(problems, key=lambda p: int(p.id)), options.test_fraction,
                                               options.split_seed)

    @staticmethod
    def _prompt(r) -> str:
        return (f"{r['text']}\nYour code should pass this test:\n"
                f"{r['test_list'][0]}\nWrite the Python function in a ```python code block.")

    def train_problems(self) -> list[Problem]:
        return self._train

    def test_problems(self) -> list[Problem]:
        return self._test

    def job(self, problem: Problem, completion: str):
        from rapidbench.tasks.sandbox import Job

        setup = problem.meta["setup"]
        code = setup + "\n" + extract_code(completion) if setup else extract_code(completion)
        return Job(code, problem.answer, setup, problem.meta["entry_points"])
