"""Reports from run directories: accuracy against training wall-clock, over seeds.

Every number is read back from the files runs wrote (summary.json, metrics.jsonl, eval.jsonl,
config.json), and nothing in the output depends on when or where the report is made, so
`rapidbench report` on committed runs reproduces the committed tables byte for byte.

Runs are grouped into settings (rapidbench.runs: task + algorithm + the options that tell its runs
apart, e.g. RAPID's A); a setting's seeds are averaged on a common time grid.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

from rapidbench.runs import PHASES, RunRecord, Setting, group
from rapidbench.stats import Estimate, halves, mean_difference, time_ratio


def mean_std(values: list[float], digits: int = 3) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def choose_target(settings: list[Setting], subject: str, target: float | None) -> tuple[float, str, bool]:
    """The accuracy every setting races to, how it was chosen, and whether it was fixed before the
    runs: `target`, else the `eval.target` the runs were started with (one value for all), else,
    flagged as chosen after the runs, the best baseline's (non-`subject`) final mean. A `target`
    other than the one the runs were started with is not fixed before them: a verdict at it is not
    given (a target picked after seeing the curves favours whichever crossed it first)."""
    recorded = {r.config.get("eval", {}).get("target", 0.0) for s in settings for r in s.runs}
    if target is not None:
        if recorded <= {0.0}:
            return target, "given with --target (the runs record none)", True
        if recorded == {target}:
            return target, "given with --target, the one every run was started with (eval.target)", True
        return target, (f"GIVEN AFTER THE RUNS with --target: the runs were started with eval.target "
                        f"{', '.join(f'{t:g}' for t in sorted(recorded))}"), False
    if len(recorded) == 1 and (only := recorded.pop()):
        return only, "fixed before the runs (eval.target, recorded in every run's config)", True
    baselines = [s for s in settings if s.algo != subject and s.finals()] or [s for s in settings if s.finals()]
    best = max(baselines, key=lambda s: s.final_mean())
    return best.final_mean(), (f"CHOSEN AFTER THE RUNS: the best baseline's final mean pass@1 ({best.label}), which "
                               "favours curves noisier than the baseline's; pass --target or start runs with "
                               "eval.target"), False


# -- tables ---------------------------------------------------------------------------------------
def _table(rows: list[list[Any]], headers: list[str]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def accuracy_table(settings: list[Setting], ks: list[str]) -> str:
    rows = []
    for s in settings:
        start = [r.evals[0]["pass@1"] for r in s.runs if r.evals]
        rewards = [statistics.mean(m["reward_mean"] for m in r.metrics[-4:]) for r in s.runs if r.metrics]
        steps = [r.summary["steps"] for r in s.runs]
        wall = [r.summary["train_wall_s"] for r in s.runs]
        rss = [r.summary["peak_rss_mib"] / 1024 for r in s.runs if "peak_rss_mib" in r.summary]
        rows.append([s.label, len(s.runs), mean_std(start), *(mean_std(s.finals(k)) for k in ks),
                     mean_std(rewards), mean_std(steps, 1), mean_std(wall, 0), f"{s.s_per_step():.1f}",
                     f"{max(rss):.2f}" if rss else "-"])
    return _table(rows, ["setting", "seeds", "pass@1 start", *(f"{k} final" for k in ks), "reward (last 4 steps)",
                         "steps", "train wall s", "s / step", "peak RSS GiB"])


def _versus(times_a: dict, finals_a: dict, keys_a: list, times_b: dict, finals_b: dict, keys_b: list
             ) -> tuple[Estimate, Estimate, str]:
    """Run k of keys_a against run k of keys_b: time ratio, final-accuracy difference, 'reached' counts."""
    ratio = time_ratio([times_a[k] for k in keys_a], [times_b[k] for k in keys_b])
    diff = mean_difference([finals_a[k] for k in keys_a], [finals_b[k] for k in keys_b])
    reached = f"{sum(not times_a[k].censored for k in keys_a)} / {sum(not times_b[k].censored for k in keys_b)}"
    return ratio, diff, reached


def paired(setting: Setting, baseline: Setting, target: float) -> tuple[list[int], Estimate, Estimate, str]:
    """Seeds both ran, the time ratio and final-accuracy difference over them, and 'reached' counts."""
    ts, tb = setting.run_times(target), baseline.run_times(target)
    fs, fb = setting.finals_by_seed(), baseline.finals_by_seed()
    seeds = sorted(set(ts) & set(tb) & set(fs) & set(fb))
    return (seeds, *_versus(ts, fs, seeds, tb, fb, seeds))


def null(baseline: Setting, target: float, settings: list[Setting] = ()) -> tuple[Estimate, Estimate, str, str] | None:
    """The baseline against itself: against its replicate (the same setting under other seeds, run
    in the same order as the rest, as many pairs as the comparison) where `settings` has one, else
    its first half of seeds against its second half (half the pairs, further apart in time)."""
    replica = next((s for s in settings if s.replica_of == baseline.label), None)
    if replica is not None:
        _, ratio, diff, reached = paired(replica, baseline, target)
        return ratio, diff, reached, f"null: {replica.label} vs {baseline.label} (other seeds)"
    times, finals = baseline.run_times(target), baseline.finals_by_seed()
    a, b = halves(sorted(set(times) & set(finals)))
    if not a:
        return None
    return (*_versus(times, finals, a, times, finals, b), f"null: {baseline.label} vs itself (seeds split in halves)")


def paired_table(settings: list[Setting], target: float, baseline: Setting) -> str:
    """Every setting against the baseline, then the null row; '' when there is neither."""
    rows = []
    for s in settings:
        if s is baseline or s.replica_of == baseline.label:  # the replicate is the null row
            continue
        seeds, ratio, diff, reached = paired(s, baseline, target)
        rows.append([s.label, len(seeds), reached, ratio.fmt(), diff.fmt(3, signed=True)])
    nl = null(baseline, target, settings)
    if nl:
        ratio, diff, reached, name = nl
        rows.append([name, ratio.pairs, reached, ratio.fmt(), diff.fmt(3, signed=True)])
    if not rows:
        return ""
    return _table(rows, ["setting", "paired seeds", f"reached target (setting / {baseline.label})",
                         f"time to target / {baseline.label}'s [95% CI]", "final pass@1 - baseline's [95% CI]"])


def seed_table(settings: list[Setting], target: float, baseline: Setting) -> str:
    """The pairs behind the ratios, one row per seed: each run's time to target (s; * censored at
    its training time), its ratio to the baseline's run on that seed, and its final pass@1. A
    replicate's run sits on the row of the seed it is paired by."""
    cols = [baseline] + [s for s in settings if s is not baseline]
    times = {s.label: s.run_times(target) for s in cols}
    finals = {s.label: s.finals_by_seed() for s in cols}
    base_t = times[baseline.label]
    rows = []
    for seed in sorted({k for t in times.values() for k in t}):
        row = [str(seed)]
        for s in cols:
            rt = times[s.label].get(seed)
            if rt is None:
                row.append("-")
                continue
            ratio = f" ({rt.seconds / base_t[seed].seconds:.2f}x)" if s is not baseline and seed in base_t else ""
            final = finals[s.label].get(seed)
            row.append(f"{rt.seconds:.0f}{'*' if rt.censored else ''} s{ratio}"
                       + (f" -> {final:.3f}" if final is not None else ""))
        rows.append(row)
    return _table(rows, ["seed", *(s.label for s in cols)])


def phase_table(settings: list[Setting]) -> str:
    rows = []
    for s in settings:
        ph = {k: s.phase_mean(k) for k in PHASES}
        wall = s.summary_mean("train_wall_s")
        fwd = s.fwd_per_sample()
        rows.append([s.label, *(f"{ph[k]:.0f}" for k in PHASES), f"{max(0.0, wall - sum(ph.values())):.0f}",
                     f"{wall:.0f}", f"{100 * s.share('gen_s'):.0f}%", f"{100 * s.share('train_s'):.0f}%",
                     "-" if fwd is None else f"{fwd:.2f}",
                     f"{s.summary_mean('eval_s'):.0f}", f"{s.summary_mean('ckpt_s'):.0f}"])
    return _table(rows, ["setting", "generation s", "grading s", "weight sync s", "training s", "other s",
                         "train wall s", "gen share", "train share", "policy forwards per trained sample",
                         "eval s (off clock)", "ckpt s (off clock)"])


def regime_table(compared: list[tuple[Setting, float, list[Setting]]], subject: str) -> str:
    """Each comparison's `subject` settings' time ratio beside the baseline's per-generation share
    of its training clock (generation, grading, weight sync: the part a larger A can save)."""
    rows = []
    for base, target, settings in compared:
        share = sum(base.share(k) for k in ("gen_s", "grade_s", "sync_s"))
        for s in settings:
            if s.algo == subject and not s.replica_of:
                seeds, ratio, _, reached = paired(s, base, target)
                rows.append([base.section, f"{100 * share:.0f}%", s.label, len(seeds), reached, ratio.fmt()])
    return _table(rows, ["comparison", "baseline's generation + grading + sync share", "setting", "paired seeds",
                         "reached target (setting / baseline)", "time to target / baseline's [95% CI]"])


# -- the document ---------------------------------------------------------------------------------
HEADER = """# Results

Generated by `rapidbench report` from the run directories below; do not edit by hand (regenerate
with `rapidbench report {paths}`; `make results` re-runs the comparison first).

How to read it: the x axis of every curve, the time budget and every "time to target" is
**training wall-clock** — generation, grading, weight sync and optimizer steps. Evaluation and
checkpointing are timed but kept off that axis (columns "eval s" and "ckpt s"), so algorithms are
compared on the time they spend learning. Accuracy is held-out pass@k estimated from n samples per
problem (unbiased estimator of Chen et al., 2021); a setting's curve is the mean over its seeds,
interpolated onto one time grid (a seed that stopped earlier holds its final value); dots are the
evaluations, the band (baseline only) is the min-max over seeds.
"""


def _describe_runs(settings: list[Setting], out: Path) -> list[str]:
    runs = [r for s in settings for r in s.runs]
    r0 = runs[0]
    budgets = sorted({r.config.get("time_budget") for r in runs if r.config.get("time_budget")})
    ev = r0.config.get("eval", {})
    lines = [f"{len(runs)} runs of {len(settings)} settings; model `{r0.summary.get('model')}`; "
             + (f"time budget {', '.join(f'{b:g}' for b in budgets)} s of training each; " if budgets else "")
             + f"evaluation on {r0.evals[0]['n_problems'] if r0.evals else '?'} held-out problems x "
             f"{ev.get('n_samples', '?')} samples at T={ev.get('temperature', '?')}.", ""]
    m = r0.summary.get("machine")
    if m:
        pk = ", ".join(f"{k} {v}" for k, v in m.get("packages", {}).items())
        isa = "AVX512-BF16" if m.get("avx512_bf16") else "AVX-512" if m.get("avx512") else "AVX2"
        gpus = f", GPUs: {', '.join(m['gpus'])}" if m.get("gpus") else ""
        dtype = r0.config.get("train", {}).get("dtype", "auto")
        if dtype == "auto":  # what samplers.base.pick_dtype picked on that machine
            dtype = "bfloat16" if m.get("gpus") or m.get("avx512_bf16") else "float32"
        lines += [f"Machine: {m['cpu']}, {m['cores']} cores, {isa}{gpus}, Python {m['python']}"
                  f"{'; ' + pk if pk else ''}. Trainer dtype {dtype}.", ""]
    rel = [os.path.relpath(r.path.resolve(), out.resolve()) for r in runs]
    lines += ["Runs: " + ", ".join(f"[{p}]({p})" for p in rel), ""]
    return lines


def _bench_section(out: Path) -> list[str]:
    """One table per machine (out/bench/<hardware tag>/), a line per JSON stating a headline ratio."""
    doc = []
    for d in sorted(p for p in (out / "bench").glob("*") if p.is_dir()):
        rows = []
        for p in sorted(d.glob("*.json")):
            h = json.loads(p.read_text()).get("headline")
            if h:
                target = h.get("target", "-")
                # a measurement an older protocol made stays on record, labelled as not evidence
                old = f"SUPERSEDED ({h['superseded']}): " if h.get("superseded") else ""
                rows.append([f"[{p.stem}](bench/{d.name}/{p.name})", old + h["name"], f"{h['value']}", target,
                             h.get("met", "-") if target != "-" else "-", h["how"]])
        if rows:
            doc += [f"### on {d.name}", "",
                    _table(rows, ["benchmark", "measures", "value", "target", "met", "how it was measured"]), ""]
    if not doc:
        return []
    return ["## Benchmarks", "", "Each row is the last line its script prints (`make bench` runs them all, writing "
            "under bench/<hardware tag>/); the JSON holds every measurement and the machine.", "", *doc]


def build_report(runs: list[RunRecord], out: Path, paths: list[str], target: float | None = None,
                 baseline: str | None = "grpo", subject: str = "rapid", plots: bool = True) -> str:
    """The markdown document (and, with `plots`, the PNGs beside it in `out`)."""
    out = Path(out)
    doc = [HEADER.format(paths=" ".join(paths)), ""]
    compared = []  # (baseline, target, settings) of every section with a paired table
    for settings in group(runs).values():
        ks = sorted({k for s in settings for r in s.runs for k in (r.evals[-1] if r.evals else {})
                     if k.startswith("pass@")}, key=lambda k: int(k[5:]))
        tgt, why, fixed = choose_target(settings, subject, target) if any(s.finals() for s in settings) else (None, "", False)
        originals = [s for s in settings if not s.replica_of]
        base = next((s for s in originals if s.label == baseline or s.algo == baseline), None)
        if base is None:
            base = next((s for s in originals if s.algo != subject), None)  # the named one is absent
        doc += [f"## {settings[0].section}", "", *_describe_runs(settings, out),
                "### Final accuracy (held-out; mean ± std over seeds)", "", accuracy_table(settings, ks), ""]
        table = paired_table(settings, tgt, base) if tgt is not None and base is not None else ""
        if table:
            doc += ["### Time to target, paired by seed", "",
                    f"Target: pass@1 = {tgt:.3f}, {why}. Each run's time to the target is read off its own "
                    "curve (linear between evaluations), where it reaches the target and the next evaluation "
                    "stays at or above it; a run that never reaches it counts its whole training "
                    "time (censored: a ratio is then a bound, see \"reached\"). Ratios are geometric means over "
                    f"the seeds both settings ran of time / {base.label}'s time on the same seed; differences are "
                    "means of paired differences; intervals are paired Student-t 95% intervals over seeds (of "
                    "the mean log ratio, of the mean difference). The null row "
                    f"compares {base.label} with itself on other seeds (its replicate where the comparison ran one): "
                    "it checks the machinery, and its interval should cover 1; each ratio is judged by its own "
                    "interval against 1 (`rapidbench/stats.py`).", "",
                    table, "",
                    "The pairs, one row per seed: each run's time to target (* never reached: censored at "
                    f"its training time), in brackets its ratio to {base.label}'s run on that seed, after the "
                    "arrow its final pass@1.", "",
                    seed_table(settings, tgt, base), ""]
            from rapidbench.history import history_section  # it reads paired() and null() from here

            doc += history_section(settings, tgt, base, subject)
            if fixed:  # a target chosen after the runs is not evidence beside one fixed before
                compared.append((base, tgt, settings))
        doc += ["### Where the training time goes (mean seconds per run)", "", phase_table(settings), ""]
        if plots:
            from rapidbench.plots import accuracy_plot, phase_plot, reward_plot

            out.mkdir(parents=True, exist_ok=True)
            stem = settings[0].stem
            figs = [accuracy_plot(settings, tgt, out / f"{stem}_accuracy.png", base),
                    reward_plot(settings, out / f"{stem}_reward.png", base),
                    phase_plot(settings, out / f"{stem}_phases.png")]
            doc += [f"![{f.stem}]({f.name})" for f in figs] + [""]
    if any(s.algo == subject and not s.replica_of for _, _, ss in compared for s in ss):
        doc += [f"## {subject}'s time ratio against the generation share", "",
                f"{subject} turns A generations into one A times larger: per step it can only save time in "
                "generation, grading and weight sync, so its per-step gain is bounded by their share of the "
                "baseline's training clock; time to target also depends on what each step teaches "
                "(`benchmarks/cost_model.py` predicts the per-step part). Comparisons with a target fixed "
                "before their runs only.", "", regime_table(compared, subject), ""]
    doc += _bench_section(out)
    if (out / "ANALYSIS.md").is_file():
        doc += ["## Analysis", "", "What these numbers say and why: [ANALYSIS.md](ANALYSIS.md) (hand-written).", ""]
    return "\n".join(doc).rstrip() + "\n"
