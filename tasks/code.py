"""Shared grading for code tasks: each completion becomes one sandbox Job, graded in the pool."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import ClassVar, Literal, Sequence

from rapidbench.tasks.base import Grade, Problem, Task, TaskOptions

_SANDBOXES: dict = {}


@dataclass
class CodeTaskOptions(TaskOptions):
    """Options of every code task (`task_args.*`)."""

    sandbox: Literal["bwrap", "process"] = "bwrap"  # "process": weaker isolation, for machines without bubblewrap
    timeout_s: float = 10.0  # wall-clock limit of one program with its tests


def shared_sandbox(mode: str = "bwrap", timeout_s: float = 10.0):
    """One sandbox pool per (mode, limit) and process, sized to the cores, created on first use."""
    from rapidbench.tasks.sandbox import Limits, Sandbox

    key = (mode, timeout_s)
    if key not in _SANDBOXES:
        _SANDBOXES[key] = Sandbox(limits=Limits().with_wall(timeout_s), mode=mode)
    return _SANDBOXES[key]


def entry_points(reference: str, tests: Sequence[str]) -> tuple[str, ...]:
    """Names the tests take from the solution: the reference's top-level functions and classes the
    tests use. They resolve to the solution's even where they shadow a builtin (MBPP 126's `sum`);
    every other builtin name in a test stays the evaluator's own."""
    try:
        top = ast.parse(reference).body
    except SyntaxError:
        top = []
    defined = {n.name for n in top if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    used = {n.id for t in tests for n in ast.walk(ast.parse(t)) if isinstance(n, ast.Name)}
    from rapidbench.tasks.sandbox import called_names

    return tuple(sorted(defined & used)) or called_names(tests)  # no usable reference: the names the tests call


class CodeTask(Task):
    uses_sandbox: ClassVar[bool] = True

    def __init__(self, options: CodeTaskOptions, seed: int = 0):
        super().__init__(options, seed)
        self.sandbox = shared_sandbox(options.sandbox, options.timeout_s)  # SandboxUnavailable names the fix, early

    def job(self, problem: Problem, completion: str):
        """The sandbox Job (program, tests, trusted setup, entry points) that grades this completion."""
        raise NotImplementedError

    def grade(self, problem: Problem, completion: str) -> Grade:
        return self.grade_many([problem], [completion])[0]

    def grade_many(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Grade]:
        verdicts = self.sandbox.run_many([self.job(p, c) for p, c in zip(problems, completions)])
        return [Grade(1.0 if v.passed else 0.0, v.passed, v.status, v.detail) for v in verdicts]
