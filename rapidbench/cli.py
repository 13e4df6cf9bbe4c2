"""`rapidbench` command line: run, compare, report, list, grade.

`launchers/run.py` calls `main(["run", ...])`, so both take exactly the same flags.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rapidbench.compare import CompareError
from rapidbench.config import ConfigError, preset_description, preset_names, resolve
from rapidbench.registry import ALL_REGISTRIES, RegistryError
from rapidbench.samplers.vllm_sampler import SamplerError

# flag -> config key; the only place flags are named
RUN_FLAGS = {
    "algo": ("algo", str, "algorithm (see `rapidbench list`)"),
    "task": ("task", str, "task (see `rapidbench list`)"),
    "model": ("model", str, "registered model, local HF dir, or hub id"),
    "sampler": ("sampler", str, "sampler backend: auto, vllm, hf"),
    "zero-stage": ("train.zero_stage", int, "DeepSpeed ZeRO stage 0-3"),
    "max-steps": ("max_steps", int, "stop after this many optimizer steps"),
    "time-budget": ("time_budget", float, "stop after this many seconds of training wall-clock"),
    "seed": ("seed", int, "run seed"),
    "output": ("output", str, "run directory (default runs/<algo>-<task>-<time>)"),
}


class UsageError(ValueError):
    pass


def add_run_args(p: argparse.ArgumentParser) -> None:
    for flag, (_, typ, help_) in RUN_FLAGS.items():
        p.add_argument(f"--{flag}", type=typ, default=None, help=help_)
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR from its last checkpoint")
    p.add_argument("--config", default=None, metavar="FILE", help="YAML config file (above the preset)")
    p.add_argument("--preset", default=None, help=f"preset from launchers/configs/ ({', '.join(preset_names())})")
    p.add_argument("--no-progress", action="store_true", help="no live progress line")
    # The deepspeed launcher passes --local_rank; LOCAL_RANK in the environment says the same.
    p.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*", metavar="section.key=value", help="overrides, e.g. train.lr=1e-5")


def config_from_args(args: argparse.Namespace):
    flags: dict[str, Any] = {key: getattr(args, flag.replace("-", "_")) for flag, (key, _, _) in RUN_FLAGS.items()}
    if args.no_progress:
        flags["progress"] = False
    base = None
    if args.resume:
        saved = Path(args.resume) / "config.json"
        if not saved.is_file():
            raise UsageError(f"--resume {args.resume}: no config.json there (not a run directory)")
        base = json.loads(saved.read_text())
        base.pop("resume", None)
        flags["output"] = args.resume
        flags["resume"] = args.resume
    return resolve(flags=flags, overrides=args.overrides, config_file=args.config, preset=args.preset, base=base)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)  # bad input fails here, before anything is started or written
    from rapidbench.harness import ExternalLog

    try:
        ExternalLog.check(cfg.loggers)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    from rapidbench.distributed import setup_distributed, teardown_distributed

    setup_distributed()
    import torch.distributed as dist

    if not cfg.output:
        name = [f"runs/{cfg.algo}-{cfg.task}-{time.strftime('%Y%m%d-%H%M%S')}"]
        if dist.get_world_size() > 1:
            dist.broadcast_object_list(name, src=0)  # all ranks write to rank 0's directory
        cfg.output = name[0]
    out = Path(cfg.output)
    if not cfg.resume and (out / "metrics.jsonl").exists():
        raise UsageError(f"{out} already holds a run; pass --resume {out} to continue it, or another --output")
    from rapidbench.runner import run

    rank = dist.get_rank()  # asked now: the in-process vLLM engine tears the group down when it closes
    summary = run(cfg)
    teardown_distributed()
    if rank == 0:
        print(json.dumps({k: summary[k] for k in ("algo", "task", "steps", "train_wall_s", "final_eval")}))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for title, reg in ALL_REGISTRIES.items():
        print(f"{title}:")
        for e in reg.entries():
            print(f"  {e.name:<14} {e.description}")
    print("presets:")
    for name in preset_names():
        print(f"  {name:<16} {preset_description(name)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from rapidbench.report import build_report
    from rapidbench.runs import find_runs

    runs = find_runs(args.paths)
    if not runs:
        raise UsageError(f"no finished runs (directories with summary.json) under {', '.join(args.paths)}")
    if args.out:
        out = Path(args.out)
    elif len(args.paths) == 1 and Path(args.paths[0]).is_dir():
        out = Path(args.paths[0])
    else:
        raise UsageError("several paths given: say where the report goes with --out DIR")
    write = not args.no_write
    doc = build_report(runs, out, args.paths, target=args.target, baseline=args.baseline, subject=args.subject,
                       plots=write)
    print(doc)
    if write:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / "README.md.tmp"
        tmp.write_text(doc)
        tmp.replace(out / "README.md")
        print(f"wrote {out / 'README.md'} and its plots", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rapidbench.compare import compare, parse_settings
    from rapidbench.harness import hardware_tag

    settings = parse_settings(args.algos)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    root = Path(args.output or f"results/runs/{args.task}/{hardware_tag()}")
    return compare(args.task, settings, seeds, args.time_budget, root, preset=args.preset,
                   eval_every=args.eval_every, overrides=args.overrides, dry_run=args.dry_run,
                   keep_checkpoints=args.keep_checkpoints, launcher=args.launcher, target=args.target)


def cmd_grade(args: argparse.Namespace) -> int:
    from rapidbench.config import build, parse_override
    from rapidbench.registry import TASKS

    cls = TASKS.get(args.task)
    raw: dict = {}
    for text in args.overrides:
        layer = parse_override(text)
        if set(layer) != {"task_args"}:
            raise UsageError(f"grade takes task_args.* overrides only, got '{text}'")
        raw.update(layer["task_args"])
    options = build(cls.Options, raw, "task_args")
    if args.completion != "-" and not Path(args.completion).is_file():
        raise UsageError(f"--completion {args.completion}: no such file (give a file with the completion, or - for stdin)")
    try:
        task = cls(options)
    except ValueError as e:  # e.g. the sandbox cannot run here; the message names the fix
        raise UsageError(f"task {args.task}: {e}") from None
    try:
        problem = task.problem(args.id)
    except KeyError as e:
        raise UsageError(f"task {args.task}: {e.args[0]}") from None
    text = sys.stdin.read() if args.completion == "-" else Path(args.completion).read_text()
    g = task.grade(problem, text)
    print(json.dumps({"task": args.task, "id": args.id, "reward": g.reward, "passed": g.passed,
                      "status": g.status, "detail": g.detail}))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rapidbench.costmodel import Calibration, Setting, best_A, share, speedup, step_parts
    from rapidbench.harness import hardware_tag

    path = Path(args.calibration or f"results/bench/{hardware_tag()}/cost_model.json")
    if not path.is_file():
        raise UsageError(f"no calibration at {path}: run `python benchmarks/cost_model.py` on this machine first "
                         "(a few minutes), or pass --calibration FILE")
    try:
        cal = Calibration.load(path)
    except ValueError as e:
        raise UsageError(str(e)) from None
    base = Setting(1, args.B, args.G, args.prompt_tokens, args.completion_tokens, not args.sampler_old_logprobs,
                   args.longest_tokens or 0.0)  # 0: Setting.longest falls back to the mean
    rows = []
    for a in args.A:
        s = replace(base, A=a)
        parts = step_parts(cal, s)
        rows.append([a, f"{sum(parts.values()):.2f}", *(f"{parts[k]:.2f}" for k in ("gen_s", "grade_s", "sync_s", "pass_s", "train_s")),
                     f"{speedup(cal, s):.2f}x"])
    from tabulate import tabulate

    print(f"calibration {path} ({cal.machine}); B={args.B} G={args.G} P={args.prompt_tokens:g} "
          f"L={args.completion_tokens:g} longest={base.longest:g}")
    print(tabulate(rows, headers=["A", "s / step", "generation", "grading", "sync", "pi_old pass", "training",
                                  "speed-up vs A=1"], tablefmt="github"))
    best = best_A(cal, base, tuple(args.A))
    # where seconds per step still fall at the largest A asked for, that A is a ceiling, not an optimum
    edge = ", the largest asked for: they fall with every larger A here" if len(args.A) > 1 and best == max(args.A) else ""
    print(f"per-generation share of an on-policy step (RAPID's ceiling): {100 * share(cal, base):.0f}%; "
          f"fewest seconds per step at A={best}{edge} (per-step cost only: off-policy steps may teach less)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rapidbench", description="RL for small language models: RAPID vs GRPO/PPO/PG/DAPO, accuracy vs wall-clock.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train one algorithm on one task", description="Train one algorithm on one task.")
    add_run_args(r)
    r.set_defaults(func=cmd_run)
    ls = sub.add_parser("list", help="list algorithms, tasks, samplers, trainers, models, presets")
    ls.set_defaults(func=cmd_list)
    cp = sub.add_parser("compare", help="run several algorithms x seeds one after another under one budget",
                        description="Run every algorithm setting for every seed, one after another, under the same "
                                    "training time budget; re-running continues where it stopped.")
    cp.add_argument("--task", required=True)
    cp.add_argument("--algos", required=True, help="comma list; NAME or NAME:key=value (algo_args), "
                                                   "e.g. rapid,grpo,rapid:steps_per_generation=8")
    cp.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    cp.add_argument("--first-seed", type=int, default=0)
    cp.add_argument("--time-budget", type=float, required=True, help="seconds of training wall-clock per run")
    cp.add_argument("--eval-every", type=float, default=None, help="evaluate every S training seconds (default budget/8)")
    cp.add_argument("--target", type=float, default=None,
                    help="pass@1 the report races to, fixed before the runs (recorded as eval.target in every run)")
    cp.add_argument("--preset", default=None,
                    help="preset per run, {algo} filled in (default '{algo}-cpu', used where it exists; '' for none)")
    cp.add_argument("--launcher", default="", help="run each through this launcher and launchers/run.py, "
                                                   "e.g. 'deepspeed --num_gpus 4' (default: one plain process)")
    cp.add_argument("--output", default=None,
                    help="root of the runs (default results/runs/<task>/<hardware tag>, e.g. amd-avx2-2c)")
    cp.add_argument("--dry-run", action="store_true", help="print the commands only")
    cp.add_argument("--keep-checkpoints", action="store_true", help="keep finished runs' checkpoints (default: delete)")
    cp.add_argument("overrides", nargs="*", metavar="section.key=value", help="overrides for every run")
    cp.set_defaults(func=cmd_compare)
    rep = sub.add_parser("report", help="tables (and plots) from run directories")
    rep.add_argument("paths", nargs="*", default=["results/"], help="run directories or folders holding them")
    rep.add_argument("--out", default=None, help="where README.md and the PNGs go (default: the one path given)")
    rep.add_argument("--target", type=float, default=None,
                     help="pass@1 to race to (default: the best baseline's final mean pass@1)")
    rep.add_argument("--baseline", default="grpo", help="setting the speed-up is measured against (default grpo)")
    rep.add_argument("--subject", default="rapid", help="the algorithm under test; every other one is a baseline")
    rep.add_argument("--no-write", action="store_true", help="print the tables only; write no file")
    rep.set_defaults(func=cmd_report)
    pr = sub.add_parser("predict", help="seconds per step for RAPID's A (and GRPO's A=1) from a calibration",
                        description="Predict seconds per optimizer step, by phase, from this machine's calibration "
                                    "(benchmarks/cost_model.py).")
    pr.add_argument("--calibration", default=None, help="cost_model.json (default results/bench/<this machine>/)")
    pr.add_argument("--A", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="steps per generation to compare")
    pr.add_argument("--B", type=int, default=4, help="prompts per step")
    pr.add_argument("--G", type=int, default=4, help="completions per prompt")
    pr.add_argument("--prompt-tokens", type=float, default=45.0)
    pr.add_argument("--completion-tokens", type=float, default=20.0, help="mean completion length")
    pr.add_argument("--longest-tokens", type=float, default=None,
                    help="longest completion of a generation, which it waits for (default: the mean, a lower "
                         "bound; the cap when completions often reach it)")
    pr.add_argument("--sampler-old-logprobs", action="store_true", help="pi_old from the sampler (fp32): no pass")
    pr.set_defaults(func=cmd_predict)
    gr = sub.add_parser("grade", help="grade one completion for one problem; prints one JSON line")
    gr.add_argument("--task", required=True)
    gr.add_argument("--id", required=True, help="native problem id (gsm8k: test-0, train-12; arith: test-3)")
    gr.add_argument("--completion", required=True, metavar="FILE", help="file with the completion, or - for stdin")
    gr.add_argument("overrides", nargs="*", metavar="task_args.key=value",
                    help="task options, e.g. task_args.sandbox=process where bubblewrap cannot run")
    gr.set_defaults(func=cmd_grade)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # Overrides may sit between flags (`--algo rapid train.lr=1e-5 --seed 1`): argparse stops
    # collecting a positional list at the first flag, so gather the rest from the leftovers.
    args, extra = parser.parse_known_args(argv)
    stray = [x for x in extra if x.startswith("-") or "=" not in x or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    try:
        return args.func(args)
    except (RegistryError, ConfigError, UsageError, SamplerError, CompareError) as e:
        print(f"rapidbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rapidbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
