"""Time to a fixed accuracy, paired by seed, with 95% intervals and the baseline-vs-itself null
beside them: RAPID against GRPO and the controls that take RAPID apart, in two sweeps, each fixed
(settings, headline, target, budget) before its runs.

`--sweep short` (default): the embedded default, one-digit `arith` with ~16-token answers, where
training dominates a step. Settings (one `rapidbench compare` sweep, seeds interleaved, the same
training budget each):
  grpo                   the baseline (group-mean advantages scaled by the group std, on-policy)
  grpo (std=false)       the same without std scaling (RAPID does not scale): isolates scaling
  rapid (A=1)            RAPID with one step per generation: GRPO without std through RAPID's code
  grpo (A=2, std=false)  "batched GRPO": RAPID's schedule (one 2B-prompt generation, 2 off-policy
                         steps) with the plain group baseline and no importance weights
  rapid (A=2)            the headline setting, fixed before this sweep (the best A of the earlier
                         sweep on the Intel AMX machine, which serves as its pilot)
  rapid (A=4)            RAPID at its preset's A
  grpo [replica 1]       GRPO again under seeds + 10000, in the same shuffled order: the A/A null,
                         as many pairs as the headline and run beside it
So (rapid A=2 vs batched GRPO) measures the importance-weighted baseline, (batched GRPO vs grpo
std=false) the schedule, (grpo std=false vs grpo) the scaling.
Seeds: 10 for every setting, fixed before the runs. On 2026-11-27, after 8 of them, the spread of
the headline's 8 pairs said a half-width of 0.15 needs ~15 paired seeds (the issue's criterion);
the plan then grew, before any later run, to 16 seeds for the headline, GRPO and the null alone
(`--headline-seeds`, 3 runs a seed instead of 7); the controls keep their 10. A plan set by the
interval's width, not its position: it does not stop when the ratio looks good.
The target pass@1 0.75 was chosen on 2026-11-26 from a pilot on amd-avx512bf16-2c (GRPO seed 900
and RAPID A=2 seeds 900-901, 180 s, the same evaluation): all three started at 0.365 and ended at
0.86-0.90; GRPO crossed 0.75 after ~109 s (60% of its budget), RAPID after 93 and 144 s; a target
on the slope, below every run's plateau, so every seed can reach it and the time resolves
differences.

`--sweep long` (on amd-avx512bf16-2c, refused elsewhere: its budget comes from a pilot there): the
long-completion regime (`{algo}-cpu-long` presets: task `count`, ~140-token
answers, one prompt of 4 completions per step, generation ~61% of a GRPO step), the settings the
regime issue names: GRPO, GRPO without std scaling, batched GRPO at the headline's A (no importance
weights, no std), RAPID at A = 2, 4 (the preset's A, the headline) and 8, A = 16, and the null.
A = 16 is the largest A tried, where the cost model's seconds per step are fewest (`rapidbench
predict --B 1 --G 4 --completion-tokens 150 --longest-tokens 192`); by the model's form they fall
with every larger A here (one generation's fixed cost exceeds the pi_old pass per step), so it is a
ceiling, not an optimum. GRPO without std was added on 2026-11-27 after a review, before any run of
this sweep: partial credit keeps groups' rewards close (the pilot's group std before the target:
median 0.2, down to 0.03), so GRPO's scaling multiplies advantages ~5x (up to ~40x; in the short
sweep at most 1.7x) and RAPID vs GRPO would mostly measure the scaling; the contrasts take the
schedule, the scaling and the importance-weighted baseline apart. Target pass@1 0.5 and a
240 s budget, chosen on 2026-11-27 from the GRPO pilot on the final task (results/runs/count/
amd-avx512bf16-2c/pilot-long-360s, seed 900, 360 s): 0.075 at the start, 0.16 after 79 s, 0.365
after 119 s, 0.72 after 159 s, 0.92 after 197 s, then a plateau at 0.92-0.965; 0.5 is on that
slope, crossed after ~135 s, 56% of 240 s (the short sweep's target: 60%). (A first pilot, before
the grader's review, rose later, 0.42 only after 272 s; a 480 s budget had been set from it.)
Seeds: 10 for every setting, fixed on 2026-11-27 before the first run (80 runs of ~9.5 min with
evaluations: ~12.5 h on 2 cores, over several sessions; `compare` resumes). No RAPID pilot ran in
this regime: seed 0 is the first look at RAPID on `count`, and the design stays as written whatever
it shows. If 10 pairs leave the headline's half-width above 0.15, the plan may grow by the short
sweep's rule (a width rule, decided before the further runs), never stop early. It did: on
2026-11-30, with all 80 runs finished (RAPID A = 4 / GRPO 1.10 [0.80, 1.50], the null 1.28
[1.00, 1.63]), the spread of the 10 pairs said ~41 paired seeds for a half-width of 0.15, and the
plan grew, before any further run, to 41 seeds for RAPID A = 4, GRPO and the null alone (93 runs
more, ~15 h over several sessions); the other five settings keep their 10. The 10-pair numbers
stay on record in ANALYSIS; the verdict is read at 41.

`--sweep long-amx`: the same regime on the Intel AMX machine (`intel-avx512bf16-2c`, refused
elsewhere), where generation is 69% of a GRPO step and RAPID A = 4's step 0.52x GRPO's (0.75x on
AMD), fixed on 2026-11-27 before its first run from the AMX pilot (results/runs/count/intel-
avx512bf16-2c/pilot-long-360s, 360 s, evaluations at the times given): GRPO seed 900 0.075, 0.25 at
273 s, 0.495 at 362 s (never 0.5); seed 901 0.07, 0.42 at 302 s, 0.515 at 369 s (0.5 at ~358 s, at
its last evaluation, on the slowed host); RAPID A = 4 seed 900 0.43 at 274 s, 0.575 at 321 s (0.5
at ~297 s), seed 901 0.45 at 348 s, 0.495 at 365 s; batched GRPO (seed 900, slowed host) 0.415 at
238 s, 0.62 at 312 s (0.5 at ~268 s). Target 0.5, the long sweep's: GRPO's pilots reach it at
~360 s or just after, so a budget of 640 s puts it at ~56% (as on AMD) and leaves room for slower
seeds. A run costs ~18 min there (640 s of training, nine evaluations, start-up). Settings: GRPO,
GRPO without std scaling, batched GRPO (A = 4, no std, no importance weights), RAPID A = 4 and the
null, 10 seeds each, interleaved (50 runs, ~15 h over several sessions); the other A run on the
AMD machine only. The first run (RAPID A = 4 seed 0) finished with four settings planned; batched
GRPO joined after a review, before any other run finished: without it a RAPID gain could not be
split into the schedule and the importance-weighted baseline. If 10 pairs leave the headline's
half-width above 0.15, the long sweep's rule applies (more seeds for the headline's trio, decided
by the width before any further run), never an early stop. It did: on 2026-11-28, with all 50 runs
finished (RAPID A = 4 / GRPO 0.80 [0.58, 1.11]), the spread of the 10 pairs said ~44 paired seeds
for a half-width of 0.15, and the plan grew, before any further run, to 44 seeds for RAPID A = 4,
GRPO and the null alone (102 runs more, ~31 h over many sessions); the controls keep their 10. The
10-pair numbers stay on record in ANALYSIS; the verdict is read at 44. The host's speed: that pilot's host
slowed ~1.7x within an hour with a clean load record, so every run records
`load.speed_start`/`speed_end` (harness.speed_probe); the rule, fixed here while the first run was
under way (before any run finished or any reading was seen), is a sensitivity, not a filter: a run
is "slowed" when the lowest of its bf16 readings is below 0.75x the median of the sweep's runs'
start readings, and the JSON gives the headline and the null with every pair holding a slowed run
left out beside the full ones; the headline is the full one. The same review found that the two
ends miss a slowdown between them: from the sweep's third run on, a reading at every evaluation
(`load.speed_during`, off the clock) joins them; its first two runs have the ends only (and a
resumed run's start is the resume's).

`--sweep long-amx-nocredit`: `count`'s next version on the same machine, fixed on 2026-12-07 after
the AMX long sweep's verdict and before this sweep's first run finished (a review's points taken
before then). `task_args.run_on_credit=false` pays nothing for a run past its last number: the
run-on plateau (ANALYSIS) that some GRPO and null runs of the first version never left (seeds 29,
10004, 10006). pass@1 (an exact run) is the same measure as before. What it measures: RAPID A = 4 /
GRPO on the version whose reward no longer pays for the plateau, with its null; GRPO, RAPID A = 4
and the null, 10 seeds each, interleaved (30 runs, ~10 h; if the width rule grows the trio as the
first version's spread did, up to ~90 more, ~30 h). What it does not: whether the version moves
the ratio. The first version's runs ran on other hosts (mostly faster VMs), and the host moved that
ratio, so a comparison across the two sweeps is descriptive only, never a test. There are no
controls either, so a shift cannot be split into the schedule, the weights or GRPO's std scaling.
The new grading spreads a group's rewards, which changes what the scaling does. Pilot: the one-seed
check (results/runs/count/intel-avx512bf16-2c/check-run_on_credit-false-640s, seed 5: RAPID at 0.5
in 202 s, GRPO in 378 s, 0.54x, against 1.19x on the first version). Seed 5 is in the sweep
(seeds 0-9, paired with the first version's), and its result is largely known from that check.
So the verdict is read on all 10 pairs, and beside it, fixed now, the ratio without seed 5. The
rest is the long-amx sweep's: 640 s, target 0.5 (both pilot runs crossed it on the slope, GRPO at
~59% of the budget), evaluations 80 s apart (a crossing is interpolated between two), and the same
slowed rule as a sensitivity, relative to this sweep's own median start reading. Runs land under
.../sweep-run_on_credit-false-640s.

The pilots' seeds are not in the sweeps (they use 0..). The headline is the headline setting's
paired time ratio to GRPO with its t interval; the JSON has every setting's, the null's, and the
seeds a half-width of 0.15 would need. Runs land under results/runs/<task>/<hardware tag>/sweep-
<budget>s; re-running continues.

    python benchmarks/time_to_accuracy.py [--sweep short|long|long-amx|long-amx-nocredit] [--seeds 10] [--headline-seeds 16] [--no-run]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parent.parent

# (setting, against, what the pair isolates), the long regime's on either machine
LONG_CONTRASTS = [("rapid:steps_per_generation=4", "grpo:steps_per_generation=4:scale_rewards=false",
                   "the importance-weighted baseline (same schedule)"),
                  ("grpo:steps_per_generation=4:scale_rewards=false", "grpo:scale_rewards=false",
                   "the schedule: one 4-prompt generation, 4 off-policy steps"),
                  ("grpo:scale_rewards=false", "grpo", "no std scaling"),
                  ("rapid:steps_per_generation=4", "grpo:scale_rewards=false",
                   "RAPID against GRPO without the scaling it does not use")]

# Each sweep as fixed before its runs (see the docstring); command-line options override.
SWEEPS = {
    "short": {"task": "arith", "preset": None, "budget": 180.0, "target": 0.75, "output": "time_to_accuracy",
              "subject": "rapid:steps_per_generation=2", "headline_seeds": 16,
              # (setting, against, what the pair isolates): direct paired contrasts on their common seeds
              "contrasts": [("rapid:steps_per_generation=2", "grpo:steps_per_generation=2:scale_rewards=false",
                             "the importance-weighted baseline (same schedule)"),
                            ("grpo:steps_per_generation=2:scale_rewards=false", "grpo:scale_rewards=false",
                             "the schedule: one 2B-prompt generation, 2 off-policy steps"),
                            ("grpo:scale_rewards=false", "grpo", "no std scaling"),
                            ("rapid:steps_per_generation=1", "grpo:scale_rewards=false",
                             "a check: the same updates through RAPID's code (ratio 1 up to clock noise)")],
              "settings": "grpo,grpo:scale_rewards=false,rapid:steps_per_generation=1,grpo:steps_per_generation=2:"
                          "scale_rewards=false,rapid:steps_per_generation=2,rapid:steps_per_generation=4,grpo:replica=1"},
    "long": {"task": "count", "preset": "{algo}-cpu-long", "budget": 240.0, "target": 0.5, "headline_seeds": 41,
             "output": "time_to_accuracy-long", "subject": "rapid:steps_per_generation=4",
             "machine": "amd-avx512bf16-2c",
             "contrasts": LONG_CONTRASTS,
             "settings": "grpo,grpo:scale_rewards=false,grpo:steps_per_generation=4:scale_rewards=false,"
                         "rapid:steps_per_generation=2,"
                         "rapid:steps_per_generation=4,rapid:steps_per_generation=8,rapid:steps_per_generation=16,"
                         "grpo:replica=1"},
    "long-amx": {"task": "count", "preset": "{algo}-cpu-long", "budget": 640.0, "target": 0.5, "headline_seeds": 44,
                 "output": "time_to_accuracy-long-amx", "subject": "rapid:steps_per_generation=4",
                 "machine": "intel-avx512bf16-2c", "slowed_below": 0.75,
                 "contrasts": LONG_CONTRASTS,
                 "settings": "grpo,grpo:scale_rewards=false,grpo:steps_per_generation=4:scale_rewards=false,"
                             "rapid:steps_per_generation=4,grpo:replica=1"},
    "long-amx-nocredit": {"task": "count", "preset": "{algo}-cpu-long", "budget": 640.0, "target": 0.5,
                          "headline_seeds": 10, "output": "time_to_accuracy-long-amx-nocredit",
                          "subject": "rapid:steps_per_generation=4", "machine": "intel-avx512bf16-2c",
                          "slowed_below": 0.75, "contrasts": [], "overrides": ["task_args.run_on_credit=false"],
                          "dir": "sweep-run_on_credit-false",  # + "-<budget>s", as every sweep's
                          "settings": "grpo,rapid:steps_per_generation=4,grpo:replica=1"},
}

if __name__ == "__main__":
    import numpy as np
    from common import headline, write

    from rapidbench.compare import compare, grow_plan, parse_settings, planned_seeds, read_record
    from rapidbench.harness import hardware_tag
    from rapidbench.report import choose_target, null, paired
    from rapidbench.runs import find_runs, group
    from rapidbench.stats import pooled_times, run_time, seeds_for_half_width, time_ratio

    def ci(e, digits=3):
        return {"value": round(e.value, digits), "ci95": [round(e.lo, digits), round(e.hi, digits)], "pairs": e.pairs}

    def steps_to(s, target):
        """Seed -> optimizer steps to the target (the same crossing rule, on the step axis): what a
        setting learns per step, free of the clock's noise; time = steps x seconds per step."""
        return {r.pair_seed: run_time(np.array([e["step"] for e in r.evals], dtype=float), r.curve()[1], target,
                                      r.summary["steps"]) for r in s.runs if r.evals}

    def slowed_sensitivity(found, base, subject, target, below, root):
        """The headline and the null again without every pair that holds a run on a slowed host
        (harness.slowed, the rule fixed with the sweep); None where the sweep fixed no rule."""
        if not below:
            return None
        from rapidbench.history import without_slowed

        runs, ratio, nl = without_slowed(found, base, subject, target, below)
        return {"rule": f"the lowest bf16 reading of a run (start, evaluations, end) < {below} x the median start "
                        "reading of the sweep's runs",
                "runs": sorted(str(r.path.relative_to(root)) for r in runs),
                # Estimates where they have an interval (>= 2 pairs), else None
                "headline_without": ratio if ratio and ratio.pairs >= 2 else None,
                "null_without": nl[0] if nl and nl[0].pairs >= 2 else None, "null_used": nl[3] if nl else None}

    def fmt(e):
        return f"{e.fmt()} ({e.pairs} pairs)" if e else "n/a (< 2 pairs)"

    def versus(a: dict, b: dict):
        keys = sorted(set(a) & set(b))
        return time_ratio([a[k] for k in keys], [b[k] for k in keys]) if keys else None

    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", choices=sorted(SWEEPS), default="short", help="which fixed sweep (see the docstring)")
    ap.add_argument("--task", default=None)
    ap.add_argument("--budget", type=float, default=None)
    ap.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 for every setting")
    ap.add_argument("--headline-seeds", type=int, default=None,
                    help="then seeds N..M-1 for the headline, GRPO and the null alone (default: the sweep's)")
    ap.add_argument("--target", type=float, default=None,
                    help="pass@1 fixed before the runs (default: the sweep's, for its task; else the one recorded)")
    ap.add_argument("--algos", default=None)
    ap.add_argument("--subject", default=None, help="the headline setting, fixed before the runs")
    ap.add_argument("--output", default=None, help="runs root (default results/runs/<task>/<hardware tag>/sweep-<budget>s)")
    ap.add_argument("--no-run", action="store_true", help="only read the finished runs (the sweep may be partial)")
    args = ap.parse_args()
    sweep = SWEEPS[args.sweep]
    tag = hardware_tag()
    if sweep.get("machine", tag) != tag:  # its JSON goes under this machine's tag too
        here = [k for k, v in SWEEPS.items() if v.get("machine", tag) == tag]
        sys.exit(f"time_to_accuracy: --sweep {args.sweep} is planned and read on {sweep['machine']} (its budget is "
                 f"set from a pilot there); this machine is {tag}: use --sweep {' or '.join(here)}")
    if args.target is None and args.task in (None, sweep["task"]):
        args.target = sweep["target"]
    args.task = args.task or sweep["task"]
    args.budget = args.budget or sweep["budget"]
    args.algos, args.subject = args.algos or sweep["settings"], args.subject or sweep["subject"]
    root = Path(args.output or ROOT / "results" / "runs" / args.task / tag / f"{sweep.get('dir', 'sweep')}-{args.budget:g}s")
    overrides = sweep.get("overrides")  # a task version is part of the plan: every run and every resume gets it
    settings = parse_settings(args.algos)
    subject_label = parse_settings(args.subject)[0].label
    more = max(args.headline_seeds if args.headline_seeds is not None else sweep["headline_seeds"], args.seeds)
    trio = [s for s in settings if s.label in ("grpo", subject_label, "grpo [replica 1]")]
    this_plan = grow_plan({s.dirname: list(range(args.seeds)) for s in settings},
                          {s.dirname: list(range(args.seeds, more)) for s in trio})
    rc = 0
    if not args.no_run:  # every setting's seeds first, then the headline's further ones, both resumable
        rc = compare(args.task, settings, list(range(args.seeds)), args.budget, root, preset=sweep["preset"],
                     target=args.target, overrides=overrides)
        if rc == 0 and more > args.seeds:
            rc = compare(args.task, trio, list(range(args.seeds, more)), args.budget, root, preset=sweep["preset"],
                         target=args.target, overrides=overrides)
    wanted = {root / s.dirname for s in settings}
    runs = [r for r in find_runs([str(root)]) if r.path.parent in wanted]
    groups = group(runs)
    if len(groups) != 1:
        sys.exit(f"time_to_accuracy: expected the runs of one task in one regime on one kind of machine under {root}, "
                 f"found {', '.join(ss[0].section for ss in groups.values()) or 'none'}")
    (_, _, hw), found = next(iter(groups.items()))
    by_label = {s.label: s for s in found}
    # the plan on record (compare.json: every seed any call asked for, per setting) and this call's
    record = read_record(root)
    plan = grow_plan(planned_seeds(record), this_plan)
    planned = {s.label: plan[s.dirname] for s in settings}
    redone = [r for r in record.get("redone", []) if not r.get("kept")]
    expected = {label: set(v) for label, v in planned.items()}
    missing = {label: sorted(want - set(by_label[label].finals_by_seed()) if label in by_label else want)
               for label, want in expected.items()}
    missing = {k: v for k, v in missing.items() if v}
    if missing:
        print(f"time_to_accuracy: not (yet) finished, left out of every pair: {missing}", flush=True)
    unread = [label for label in ("grpo", subject_label) if label not in by_label]
    if unread:  # a sweep stopped early: say so, instead of failing on the first pair that is not there
        sys.exit(f"time_to_accuracy: no finished run of {' or '.join(unread)} under {root} yet; "
                 "run the sweep on (the same command without --no-run) before reading it")
    base = by_label["grpo"]
    target, why, fixed = choose_target(found, "rapid", args.target)
    if not fixed:
        sys.exit("time_to_accuracy: no target fixed before the runs: pass --target (from a pilot) to the sweep")
    replica = next((s for s in found if s.replica_of == base.label), None)
    # the baseline's two samples as one: every ratio otherwise divides by the same draw of GRPO
    base_steps, replica_times = steps_to(base, target), replica.run_times(target) if replica else {}
    pooled = pooled_times(base.run_times(target), replica_times)
    rows = []
    for s in found:
        seeds, ratio, diff, reached = paired(s, base, target) if s is not base else ([r.seed for r in s.runs], None, None, "")
        fwd = s.fwd_per_sample()
        rows.append({
            "setting": s.label, "seeds": len(s.runs), "final_pass@1": round(s.final_mean(), 4),
            "final_pass@1_std": round(statistics.stdev(s.finals()), 4) if len(s.finals()) > 1 else 0.0,
            **({"time_ratio_vs_grpo": round(ratio.value, 3), "ci95": [round(ratio.lo, 3), round(ratio.hi, 3)],
                "paired_seeds": ratio.pairs, "reached_target_setting_grpo": reached,
                "final_diff_vs_grpo": round(diff.value, 4), "final_diff_ci95": [round(diff.lo, 4), round(diff.hi, 4)]}
               if ratio else {}),
            **({"steps_to_target_ratio_vs_grpo": ci(versus(steps_to(s, target), base_steps))}
               if ratio else {}),
            **({"time_ratio_vs_grpo_replica": ci(versus(s.run_times(target), replica_times)),
                "time_ratio_vs_both_grpo_samples": ci(versus(s.run_times(target), pooled))}
               if ratio and replica and s is not replica else {}),
            "steps": s.summary_mean("steps"), "s_per_step": round(s.s_per_step(), 2),
            **{f"{k[:-2]}_share": round(s.share(k), 3) for k in ("gen_s", "train_s", "sync_s")},
            "policy_forwards_per_sample": None if fwd is None else round(fwd, 3),
        })
        print(rows[-1], flush=True)
    nl = null(base, target, found)
    null_ratio = nl[0] if nl else None
    subj = next(r for r in rows if r["setting"] == subject_label)
    subj_seeds, subj_ratio, _, subj_reached = paired(by_label[subject_label], base, target)
    need = seeds_for_half_width(subj_ratio, 0.15)
    contrasts = []
    for a, b, what in sweep["contrasts"]:
        sa, sb = (by_label.get(parse_settings(x)[0].label) for x in (a, b))
        if sa and sb:
            _, r, d, reached = paired(sa, sb, target)
            contrasts.append({"setting": sa.label, "against": sb.label, "isolates": what,
                              "time_ratio": ci(r), "final_diff": ci(d, 4), "reached": reached,
                              "steps_to_target_ratio": ci(versus(steps_to(sa, target), steps_to(sb, target)))})
            print("contrast", contrasts[-1], flush=True)
    slow = slowed_sensitivity(found, base, by_label[subject_label], target, sweep.get("slowed_below"), root)
    # a censored pair makes the ratio a bound, not a measurement: met only when every run got there,
    # and only on the whole plan (no verdict from a sweep stopped when it looked good), >= 2 pairs,
    # and with the null's interval covering 1 (else the machinery, not the setting, may be speaking)
    all_reached = all(not s.run_times(target)[k].censored for s in (by_label[subject_label], base) for k in subj_seeds)
    null_ok = null_ratio is not None and null_ratio.pairs >= 2 and null_ratio.lo <= 1.0 <= null_ratio.hi
    met = (subj_ratio.value <= 0.60 and subj_ratio.hi < 1.0 and all_reached and not missing
           and subj_ratio.pairs >= 2 and null_ok)
    counts = {}  # seeds finished -> settings: the controls may have fewer than the headline's trio
    for s in found:
        counts.setdefault(len(s.finals_by_seed()), []).append(s.label)
    how = (f"on {hw}: {subj['paired_seeds']} paired seeds for the headline; "
           + "; ".join(f"{n} seeds: {', '.join(ls)}" for n, ls in sorted(counts.items(), reverse=True))
           + f"; {args.budget:g} s "
           f"of training each, seeds interleaved; target pass@1 {target:.3f} ({why}); geometric mean over seeds of "
           f"time to target / GRPO's on the same seed, 95% t CI {subj_ratio.fmt()}; runs that reached the "
           f"target (setting / GRPO): {subj_reached}; {nl[3] if nl else 'null'}: "
           f"{null_ratio.fmt() if null_ratio else 'n/a'}; a half-width of 0.15 would need about {need} paired seeds "
           f"(rough: from the spread of {subj_ratio.pairs} pairs)"
           + (f"; {len(redone)} run(s) set aside and run again (harness.disturbed: something ran beside them; "
              "reasons in compare.json 'redone')" if redone else "")
           + (f"; unfinished of the planned seeds: {missing}" if missing else "")
           + (f"; host-speed sensitivity ({slow['rule']}): {len(slow['runs'])} run(s) slowed, without their pairs "
              f"the headline {fmt(slow['headline_without'])}, {slow['null_used'] or 'null'} {fmt(slow['null_without'])}"
              if slow else ""))
    head = headline(f"{subject_label} time to the fixed target / GRPO's (paired)", round(subj_ratio.value, 3), how,
                    target="<= 0.60 with the CI's upper end < 1 (and the null's covering 1)", met=met)
    head.update({"ci95": [round(subj_ratio.lo, 3), round(subj_ratio.hi, 3)], "seeds": subj_ratio.pairs,
                 "target_pass@1": target,
                 "null_ci95": [round(null_ratio.lo, 3), round(null_ratio.hi, 3)] if null_ratio else None,
                 "null_ratio": round(null_ratio.value, 3) if null_ratio else None, "null": nl[3] if nl else None,
                 "reached_target_setting_grpo": subj_reached, "planned_seeds": planned, "unfinished": missing,
                 "redone": redone,
                 **({"slowed": {**slow, **{k: ci(slow[k]) if slow[k] else None
                                           for k in ("headline_without", "null_without")}}} if slow else {}),
                 "seeds_for_half_width_0.15": need})
    out = write(sweep["output"], {"task": args.task, "runs_hardware": hw, "budget_s": args.budget,
                                     "target_pass@1": target, "target_source": why, "baseline": "grpo",
                                     "subject": subject_label, "rows": rows, "contrasts": contrasts}, head)
    print(f"wrote {out}")
    print(f"{subject_label} time to target / GRPO's: {subj_ratio.fmt()} (null {null_ratio.fmt() if null_ratio else 'n/a'})")
    sys.exit(rc)
