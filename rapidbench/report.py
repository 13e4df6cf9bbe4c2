"""Reports from run directories: tables of accuracy against training wall-clock.

Every number here is read back from the files a run wrote (summary.json, metrics.jsonl,
eval.jsonl), so a report can be regenerated from committed runs at any time.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapidbench.harness import read_jsonl


@dataclass
class RunRecord:
    path: Path
    summary: dict[str, Any]
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    evals: list[dict[str, Any]]

    @property
    def label(self) -> str:
        """algo plus the options that tell its runs apart (RAPID's A)."""
        a = self.config.get("algo_args") or {}
        if "steps_per_generation" in a:
            return f"{self.summary['algo']} (A={a['steps_per_generation']})"
        return self.summary["algo"]


def find_runs(paths: list[str]) -> list[RunRecord]:
    """Every directory under `paths` holding a finished run (summary.json), sorted by path."""
    found: list[Path] = []
    for p in paths:
        root = Path(p)
        if (root / "summary.json").is_file():
            found.append(root)
        elif root.is_dir():
            found.extend(s.parent for s in root.rglob("summary.json"))
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


def _fmt_mean_std(values: list[float], digits: int = 3) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def comparison_rows(runs: list[RunRecord]) -> list[list[Any]]:
    """One row per label (algorithm setting): accuracy before/after, steps, time and where it went."""
    by_label: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_label.setdefault(r.label, []).append(r)
    rows = []
    for label, rs in sorted(by_label.items()):
        first = [r.evals[0]["pass@1"] for r in rs if r.evals]
        last = [r.evals[-1]["pass@1"] for r in rs if r.evals]
        wall = [r.summary["train_wall_s"] for r in rs]
        steps = [r.summary["steps"] for r in rs]
        phases = {k: sum(r.summary["phases_s"].get(k, 0.0) for r in rs) for k in ("gen_s", "grade_s", "sync_s", "train_s")}
        total = sum(phases.values()) or 1.0
        rewards = [statistics.mean(m["reward_mean"] for m in r.metrics[-4:]) for r in rs if r.metrics]
        rows.append([
            label, len(rs), _fmt_mean_std(first), _fmt_mean_std(last), _fmt_mean_std(rewards),
            f"{statistics.mean(steps):.0f}", f"{statistics.mean(wall):.0f}",
            f"{statistics.mean(w / max(1, s) for w, s in zip(wall, steps)):.1f}",
            f"{100 * phases['gen_s'] / total:.0f}/{100 * phases['train_s'] / total:.0f}/{100 * phases['sync_s'] / total:.0f}",
        ])
    return rows


COMPARISON_HEADERS = ["algorithm", "runs", "pass@1 start", "pass@1 end", "reward (last 4 steps)", "steps",
                      "train wall s", "s / step", "gen/train/sync %"]


def comparison_table(runs: list[RunRecord], fmt: str = "github") -> str:
    from tabulate import tabulate

    return tabulate(comparison_rows(runs), headers=COMPARISON_HEADERS, tablefmt=fmt, disable_numparse=True)
