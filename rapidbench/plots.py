"""PNG figures for a report: accuracy and reward against training wall-clock, phase bars.

Agg backend, fixed size and DPI, no timestamp or version in the PNG metadata: the same runs give
the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rapidbench.report import PHASES, Setting, mean_curve

PNG_META = {"Software": None}
PHASE_NAMES = {"gen_s": "generation", "grade_s": "grading", "sync_s": "weight sync", "train_s": "training"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curve_plot(settings: list[Setting], curves, ylabel: str, title: str, path: Path,
                target: float | None = None) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for s, (grid, mean, lo, hi) in zip(settings, curves):
        if not len(grid):
            continue
        (line,) = ax.plot(grid, mean, label=f"{s.label} (n={len(s.runs)})", linewidth=1.8)
        if len(s.runs) > 1:
            ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.18, linewidth=0)
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:.3f}")
    ax.set_xlabel("training wall-clock (s; evaluation and checkpointing excluded)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, metadata=PNG_META)
    plt.close(fig)
    return path


def accuracy_plot(settings: list[Setting], target: float | None, path: Path) -> Path:
    task = settings[0].section
    return _curve_plot(settings, [s.mean_curve() for s in settings], "held-out pass@1",
                       f"{task}: accuracy vs training time (mean, band = min-max over seeds)", path, target)


def reward_plot(settings: list[Setting], path: Path) -> Path:
    task = settings[0].section
    curves = [mean_curve([r.reward_curve() for r in s.runs]) for s in settings]
    return _curve_plot(settings, curves, "mean reward of sampled batch",
                       f"{task}: training reward vs training time", path)


def phase_plot(settings: list[Setting], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(settings) + 1.6), dpi=110)
    labels = [s.label for s in settings]
    left = np.zeros(len(settings))
    for k in PHASES:
        vals = np.array([s.phase_mean(k) for s in settings])
        ax.barh(labels, vals, left=left, label=PHASE_NAMES[k])
        left += vals
    ax.set_xlabel("seconds of training wall-clock (mean over seeds)")
    ax.set_title(f"{settings[0].section}: where the training time goes")
    ax.invert_yaxis()
    ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.28))
    fig.savefig(path, metadata=PNG_META, bbox_inches="tight")
    plt.close(fig)
    return path
