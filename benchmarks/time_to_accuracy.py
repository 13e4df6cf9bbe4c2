"""Time to accuracy on the embedded default: RAPID (A = 2, 4, 8) vs GRPO, PPO, PG, DAPO, 3 seeds,
the same training budget, one after another on this machine (`rapidbench compare`).

The headline is RAPID's time to reach GRPO's final mean pass@1 divided by GRPO's time (both read
off the seed-mean curves), for the best A. Runs land in results/runs/<task>/ beside `make results`'
(whose rapid/grpo/ppo runs are reused, not repeated, when the budget matches); re-running continues.
The JSON also records where each setting's time went, so a ratio short of the target is explained.

    python benchmarks/time_to_accuracy.py [--budget 180] [--seeds 3] [--algos ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parent.parent

DEFAULT_ALGOS = "rapid,grpo,ppo,rapid:steps_per_generation=2,rapid:steps_per_generation=8,pg,dapo"

if __name__ == "__main__":
    from common import headline, write

    from rapidbench.compare import compare, parse_settings
    from rapidbench.report import find_runs, group

    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="arith")
    ap.add_argument("--budget", type=float, default=180.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--algos", default=DEFAULT_ALGOS)
    ap.add_argument("--baseline", default="grpo")
    ap.add_argument("--output", default=None, help="runs root (default results/runs/<task>)")
    args = ap.parse_args()
    root = Path(args.output or ROOT / "results" / "runs" / args.task)
    settings = parse_settings(args.algos)
    rc = compare(args.task, settings, list(range(args.seeds)), args.budget, root)
    wanted = {root / s.dirname for s in settings}
    runs = [r for r in find_runs([str(root)]) if r.path.parent in wanted and r.config.get("time_budget") == args.budget]
    by_label = {s.label: s for s in group(runs).get(args.task, [])}
    base = next(s for s in by_label.values() if s.algo == args.baseline)
    target = base.final_mean()
    base_t = base.time_to(target)
    rows = []
    for s in by_label.values():
        n = len(s.runs)
        wall = sum(r.summary["train_wall_s"] for r in s.runs) / n
        ph = {k: sum(r.summary["phases_s"][k] for r in s.runs) / n for k in ("gen_s", "train_s", "sync_s", "grade_s")}
        a = s.runs[0].config["algo_args"]
        t = s.time_to(target)
        rows.append({
            "setting": s.label, "seeds": n, "final_pass@1": round(s.final_mean(), 4),
            "final_pass@1_std": round(statistics.stdev(s.finals()), 4) if n > 1 else 0.0,
            "time_to_target_s": None if t is None else round(t, 1),
            "ratio_vs_baseline": None if (t is None or not base_t) else round(t / base_t, 3),
            "steps": statistics.mean(r.summary["steps"] for r in s.runs), "train_wall_s": round(wall, 1),
            "s_per_step": round(statistics.mean(r.summary["train_wall_s"] / max(1, r.summary["steps"]) for r in s.runs), 2),
            "gen_share": round(ph["gen_s"] / wall, 3), "train_share": round(ph["train_s"] / wall, 3),
            "sync_share": round(ph["sync_s"] / wall, 3),
            "prompts_per_step": a.get("prompts_per_step"), "group_size": a.get("group_size"),
            "steps_per_generation": a.get("steps_per_generation", a.get("num_iterations", 1)),
        })
        print(rows[-1], flush=True)
    rapid = [r for r in rows if r["setting"].startswith("rapid") and r["ratio_vs_baseline"] is not None]
    best = min(rapid, key=lambda r: r["ratio_vs_baseline"]) if rapid else None
    value = best["ratio_vs_baseline"] if best else None
    how = (f"{args.seeds} seeds x {len(settings)} settings, {args.budget:g} s of training each, one after another; "
           f"target = {args.baseline}'s final mean pass@1 ({target:.3f}), times read off seed-mean curves; "
           f"best RAPID setting: {best['setting'] if best else 'none reached the target'}")
    head = headline(f"RAPID time to {args.baseline}'s final accuracy / {args.baseline}'s time", value, how,
                    target="<= 0.60", met=value is not None and value <= 0.60)
    out = write("time_to_accuracy", {"task": args.task, "budget_s": args.budget, "target_pass@1": round(target, 4),
                                     "baseline": args.baseline, "baseline_time_s": base_t, "rows": rows}, head)
    print(f"wrote {out}")
    print(f"RAPID ({best['setting'] if best else '-'}) time to {args.baseline}'s final accuracy / {args.baseline}'s: {value}")
    sys.exit(rc)
