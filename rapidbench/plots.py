"""PNG figures for a report: accuracy and reward against training wall-clock, phase bars.

Agg backend, fixed size and DPI, no timestamp or version in the PNG metadata: the same runs give
the same bytes. Readability choices: each algorithm has a colour family (RAPID's A = 1, 2, 4, 8
are shades of one blue), every evaluation is a marker (the line between them is interpolation),
min-max bands are drawn only for the baseline (seven overlapping bands say nothing), and the phase
bars include the loop's own time, so each bar is the whole training clock.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rapidbench.runs import PHASES, Setting, mean_curve

PNG_META = {"Software": None}
PHASE_NAMES = {"gen_s": "generation", "grade_s": "grading", "sync_s": "weight sync", "train_s": "training",
               "other": "other (loop)"}
FAMILIES = {"rapid": "Blues", "grpo": "Oranges", "ppo": "Greens", "pg": "Purples", "dapo": "Reds"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def colours(settings: list[Setting]) -> list:
    """One colour family per algorithm, shades within it in table order."""
    plt = _plt()
    out = []
    for s in settings:
        mates = [x for x in settings if x.algo == s.algo]
        cmap = plt.get_cmap(FAMILIES.get(s.algo, "Greys"))
        shade = 0.85 if len(mates) == 1 else 0.45 + 0.5 * mates.index(s) / (len(mates) - 1)
        out.append(cmap(shade))
    return out


def _title(ax, section: str, what: str) -> None:
    ax.set_title(f"{section}\n{what}", fontsize=9, loc="left")


def _curve_plot(settings: list[Setting], curves, points, ylabel: str, what: str, path: Path,
                target: float | None = None, band_for: Setting | None = None) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=110)
    for s, (grid, mean, lo, hi), pts, colour in zip(settings, curves, points, colours(settings)):
        if not len(grid):
            continue
        ax.plot(grid, mean, label=f"{s.label} (n={len(s.runs)})", linewidth=1.6, color=colour)
        for t, y in pts:  # the evaluations themselves, one marker each
            ax.plot(t, y, linestyle="none", marker="o", markersize=2.5, color=colour, alpha=0.55)
        if s is band_for and len(s.runs) > 1:
            ax.fill_between(grid, lo, hi, color=colour, alpha=0.15, linewidth=0, label=f"{s.label}: min-max over seeds")
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:.3f}")
    ax.set_xlabel("training wall-clock, s (evaluation and checkpointing excluded)")
    ax.set_ylabel(ylabel)
    _title(ax, settings[0].section, what)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.savefig(path, metadata=PNG_META, bbox_inches="tight")
    plt.close(fig)
    return path


def accuracy_plot(settings: list[Setting], target: float | None, path: Path, baseline: Setting | None = None) -> Path:
    points = [[r.curve() for r in s.runs] for s in settings]
    return _curve_plot(settings, [s.mean_curve() for s in settings], points, "held-out pass@1",
                       "accuracy vs training time: mean over seeds, dots = evaluations", path, target, baseline)


def reward_plot(settings: list[Setting], path: Path, baseline: Setting | None = None) -> Path:
    curves = [mean_curve([r.reward_curve() for r in s.runs]) for s in settings]
    return _curve_plot(settings, curves, [[] for _ in settings], "mean reward of the sampled batch",
                       "training reward vs training time: mean over seeds", path, band_for=baseline)


def phase_plot(settings: list[Setting], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(settings) + 1.6), dpi=110)
    labels = [s.label for s in settings]
    left = np.zeros(len(settings))
    wall = np.array([s.summary_mean("train_wall_s") for s in settings])
    for k in (*PHASES, "other"):
        vals = wall - left if k == "other" else np.array([s.phase_mean(k) for s in settings])
        ax.barh(labels, np.maximum(vals, 0), left=left, label=PHASE_NAMES[k])
        left += np.maximum(vals, 0)
    ax.set_xlabel("seconds of training wall-clock, mean over seeds (bars add up to it)")
    _title(ax, settings[0].section, "where the training time goes")
    ax.invert_yaxis()
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.savefig(path, metadata=PNG_META, bbox_inches="tight")
    plt.close(fig)
    return path
