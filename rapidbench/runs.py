"""Finished runs read back from their directories, and grouped into settings.

A run is what `rapidbench run` wrote (summary.json, config.json, metrics.jsonl, eval.jsonl); a
setting is one task + algorithm + the options that tell its runs apart (e.g. RAPID's A), its seeds
averaged on a common time grid. The report (rapidbench.report), its plots and the benchmarks that
read runs back (time_to_accuracy, cost_model) share these.
"""

from __future__ import annotations

import functools
import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rapidbench.compare import is_seed_dirname
from rapidbench.config import ConfigError, build, load_preset
from rapidbench.harness import hardware_tag, read_jsonl
from rapidbench.registry import TASKS, RegistryError
from rapidbench.stats import RunTime, crossing_time, run_time

PHASES = ("gen_s", "grade_s", "sync_s", "train_s")
GRID_POINTS = 101


@dataclass
class RunRecord:
    path: Path
    summary: dict[str, Any]
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    evals: list[dict[str, Any]]

    @property
    def label(self) -> str:
        """The setting's name: `compare`'s label (algorithm and the options that tell settings
        apart), else the algorithm plus RAPID's A."""
        if self.config.get("label"):
            return self.config["label"]
        a = self.config.get("algo_args") or {}
        if "steps_per_generation" in a and (a["steps_per_generation"] != 1 or self.summary["algo"] == "rapid"):
            return f"{self.summary['algo']} (A={a['steps_per_generation']})"
        return self.summary["algo"]

    @property
    def seed(self) -> int:
        return int(self.summary.get("seed", 0))

    @property
    def pair_seed(self) -> int:
        """The seed it is paired by: its own, or, for a replicate, its base setting's seed."""
        p = int(self.config.get("pair_seed", -1))
        return p if p >= 0 else self.seed

    @property
    def task(self) -> str:
        return self.summary["task"]

    @property
    def regime(self) -> str:
        """The preset family it ran in, when not the default short one (`{algo}-cpu-long` ->
        "cpu-long"), then the task options it set beyond its preset (`task_overrides`). Runs of one
        task in two regimes (other options, other lengths) are two comparisons."""
        preset, algo = self.config.get("preset") or "", self.summary["algo"]
        family = preset[len(algo) + 1:] if preset.startswith(f"{algo}-") else preset
        return ", ".join(x for x in ("" if family in ("", "cpu") else family, *task_overrides(self.config)) if x)

    @property
    def hw(self) -> str:
        """The machine class its times belong to (harness.hardware_tag)."""
        m = self.summary.get("machine")
        return hardware_tag(m) if m else "unknown-machine"

    def curve(self, metric: str = "pass@1") -> tuple[np.ndarray, np.ndarray]:
        """(training seconds, metric) at each evaluation."""
        pts = [(e["wall_s"], e[metric]) for e in self.evals if metric in e]
        return np.array([p[0] for p in pts], dtype=float), np.array([p[1] for p in pts], dtype=float)

    def reward_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(training seconds, mean reward of the sampled batch) once per generation."""
        seen: dict[int, tuple[float, float]] = {}
        for m in self.metrics:
            seen.setdefault(m.get("generation", m["step"]), (m["wall_s"], m["reward_mean"]))
        pts = sorted(seen.values())
        return np.array([p[0] for p in pts], dtype=float), np.array([p[1] for p in pts], dtype=float)


@functools.lru_cache(maxsize=None)
def _preset_task_args(task: str, preset: str) -> dict[str, Any] | None:
    """The task options a run of `task` under `preset` gets when nothing overrides them (JSON
    values); None where the task or preset is no longer known, or the preset now names another
    task (it changed since the run: what it set then cannot be read back)."""
    try:
        layer = load_preset(preset) if preset else {}
        if layer.get("task", task) != task:
            return None
        return json.loads(json.dumps(asdict(build(TASKS.get(task).Options, layer.get("task_args") or {}, "task_args"))))
    except (ConfigError, RegistryError):
        return None


def task_overrides(config: dict[str, Any]) -> tuple[str, ...]:
    """The task options a run set beyond its preset's, as `key=value` (e.g. `run_on_credit=false`):
    graded or posed otherwise, its runs are another comparison and never share a table with the
    preset's. Options a run's config lacks (added since) or the task no longer has are not compared.
    `config` is as read from config.json (JSON values), the preset's side is made so to compare."""
    ran, task = config.get("task_args") or {}, config.get("task")
    expected = _preset_task_args(task, config.get("preset") or "") if ran and task else None
    if not expected:
        return ()
    return tuple(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(ran.items())
                 if k in expected and v != expected[k])


def find_runs(paths: list[str]) -> list[RunRecord]:
    """Every directory under `paths` holding a finished run (summary.json), sorted by path; not
    under hidden directories (compare's .disturbed/: runs set aside and run again)."""
    found: list[Path] = []
    for p in paths:
        root = Path(p)
        if (root / "summary.json").is_file():
            found.append(root)
        elif root.is_dir():
            found.extend(s.parent for s in root.rglob("summary.json")
                         if "checkpoints" not in s.parts and not any(x.startswith(".") for x in s.relative_to(root).parts))
    runs = []
    for d in sorted(set(found)):
        runs.append(RunRecord(
            path=d,
            summary=json.loads((d / "summary.json").read_text()),
            config=json.loads((d / "config.json").read_text()) if (d / "config.json").is_file() else {},
            metrics=read_jsonl(d / "metrics.jsonl"),
            evals=read_jsonl(d / "eval.jsonl"),
        ))
    return runs


def mean_curve(curves: list[tuple[np.ndarray, np.ndarray]], points: int = GRID_POINTS):
    """Seeds evaluated at slightly different times: interpolate each onto one grid up to the latest
    last evaluation, a seed that stopped earlier holding its final value (its budget is spent, its
    policy final), then mean, min and max. The mean curve ends at the mean of the finals.
    -> (grid, mean, lo, hi)."""
    curves = [c for c in curves if len(c[0])]
    if not curves:
        return (np.array([]),) * 4
    end = max(float(t[-1]) for t, _ in curves)
    start = max(float(t[0]) for t, _ in curves)
    grid = np.linspace(start, end, points) if end > start else np.array([end])
    ys = np.stack([np.interp(grid, t, y) for t, y in curves])
    return grid, ys.mean(0), ys.min(0), ys.max(0)


@dataclass
class Setting:
    task: str
    hw: str
    label: str
    runs: list[RunRecord] = field(default_factory=list)
    regime: str = ""
    budget: str = ""  # set only where runs of one task, regime and machine had different budgets
    root: str = ""  # set only where such runs of one budget came from several comparisons (a check beside its sweep)

    @property
    def algo(self) -> str:
        return self.runs[0].summary["algo"]

    @property
    def replica_of(self) -> str:
        """The label of the setting this one replicates under other seeds (the A/A null), or ''."""
        return self.runs[0].config.get("replica_of", "")

    @property
    def section(self) -> str:
        """What its table and plots are titled by: the task (and regime) and the kind of machine."""
        kind = ", ".join(x for x in (self.regime, self.budget and f"{self.budget} s budget", self.root) if x)
        return f"{self.task}{f' ({kind})' if kind else ''} on {self.hw}"

    @property
    def stem(self) -> str:
        """Its plots' file-name stem."""
        stem = "-".join(x for x in (self.task, self.regime, self.budget and f"{self.budget}s", self.root, self.hw) if x)
        return re.sub(r"[^A-Za-z0-9._-]+", "-", stem)  # a regime's ", key=value" parts

    def finals(self, metric: str = "pass@1") -> list[float]:
        return [r.evals[-1][metric] for r in self.runs if r.evals and metric in r.evals[-1]]

    def final_mean(self) -> float:
        f = self.finals()
        return statistics.mean(f) if f else float("nan")

    def phase_mean(self, key: str) -> float:
        """Mean seconds per run in phase `key` (gen_s, grade_s, sync_s, train_s)."""
        return sum(r.summary["phases_s"].get(key, 0.0) for r in self.runs) / len(self.runs)

    def summary_mean(self, key: str) -> float:
        """Mean over seeds of a number in summary.json (train_wall_s, steps, eval_s, ...); absent = 0."""
        return sum(r.summary.get(key, 0.0) for r in self.runs) / len(self.runs)

    def share(self, key: str) -> float:
        """Phase `key`'s fraction of the training wall-clock."""
        return self.phase_mean(key) / max(self.summary_mean("train_wall_s"), 1e-9)

    def s_per_step(self) -> float:
        return statistics.mean(r.summary["train_wall_s"] / max(1, r.summary["steps"]) for r in self.runs)

    def mean_curve(self, metric: str = "pass@1"):
        return mean_curve([r.curve(metric) for r in self.runs])

    def time_to(self, target: float) -> float | None:
        """When the seed-mean curve reaches `target` (descriptive; the comparison is paired by seed)."""
        grid, mean, _, _ = self.mean_curve()
        return crossing_time(grid, mean, target) if len(grid) else None

    def run_times(self, target: float) -> dict[int, RunTime]:
        """Seed -> time to `target` (censored at its training time when never reached)."""
        return {r.pair_seed: run_time(*r.curve(), target, r.summary["train_wall_s"]) for r in self.runs if r.evals}

    def finals_by_seed(self, metric: str = "pass@1") -> dict[int, float]:
        return {r.pair_seed: r.evals[-1][metric] for r in self.runs if r.evals and metric in r.evals[-1]}

    def fwd_per_sample(self) -> float | None:
        """Policy forward rows per trained row, mean over steps (the equal-work audit; newer runs)."""
        vals = [m["fwd_per_sample"] for r in self.runs for m in r.metrics if "fwd_per_sample" in m]
        return statistics.mean(vals) if vals else None


def group(runs: list[RunRecord]) -> dict[tuple[str, str, str], list[Setting]]:
    """(task, regime, hardware tag) -> settings (sorted by label), each holding its runs (one per
    seed). Runs made on different kinds of machine never share a table: their clocks do not compare.
    Runs with different training budgets (a pilot beside its sweep) are not one comparison either:
    where they meet, each budget is a section of its own, keyed (task, "regime, N s", tag). Nor are runs of
    one budget from several comparisons (a one-seed check beside the sweep it led to): each comparison's
    directory is then a section of its own, keyed (task, "regime, <directory>", tag)."""
    def budget(r: RunRecord) -> str:
        return f"{r.config.get('time_budget') or 0:g}"

    def root(r: RunRecord) -> str:  # the directory of compare's <root>/<setting>/seed<N>; '' for a run made by hand
        return r.path.parent.parent.name if is_seed_dirname(r.path.name) else ""

    budgets: dict[tuple[str, str, str], set[str]] = {}
    roots: dict[tuple[str, str, str, str], set[str]] = {}
    for r in runs:
        budgets.setdefault((r.task, r.regime, r.hw), set()).add(budget(r))
        roots.setdefault((r.task, r.regime, r.hw, budget(r)), set()).add(root(r))
    mixed = {k for k, v in budgets.items() if len(v) > 1}
    out: dict[tuple[str, str, str], dict[str, Setting]] = {}
    for r in runs:
        b = budget(r) if (r.task, r.regime, r.hw) in mixed else ""
        w = root(r) if len(roots[r.task, r.regime, r.hw, budget(r)]) > 1 else ""
        by = out.setdefault((r.task, ", ".join(x for x in (r.regime, b and f"{b} s", w) if x), r.hw), {})
        by.setdefault(r.label, Setting(r.task, r.hw, r.label, regime=r.regime, budget=b, root=w)).runs.append(r)
    return {key: [s for _, s in sorted(by.items())] for key, by in sorted(out.items())}
