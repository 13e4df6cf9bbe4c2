"""Shared grading for code tasks: each completion becomes one sandbox Job, graded in the pool."""

from __future__ import annotations

from typing import ClassVar, Sequence

from rapidbench.tasks.base import Grade, Problem, Task

_SANDBOX = None


def shared_sandbox():
    """One sandbox pool per process, sized to the cores, created on first use."""
    global _SANDBOX
    if _SANDBOX is None:
        from rapidbench.tasks.sandbox import Sandbox

        _SANDBOX = Sandbox()
    return _SANDBOX


class CodeTask(Task):
    uses_sandbox: ClassVar[bool] = True

    def job(self, problem: Problem, completion: str):
        """The sandbox Job (program, tests, setup) that grades this completion."""
        raise NotImplementedError

    def grade(self, problem: Problem, completion: str) -> Grade:
        return self.grade_many([problem], [completion])[0]

    def grade_many(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Grade]:
        verdicts = shared_sandbox().run_many([self.job(p, c) for p, c in zip(problems, completions)])
        return [Grade(1.0 if v.passed else 0.0, v.passed, v.status, v.detail) for v in verdicts]
