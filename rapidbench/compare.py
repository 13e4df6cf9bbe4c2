"""`rapidbench compare`: every (algorithm setting, seed) pair run one after another, same budget.

Each run is its own `python -m rapidbench run` process, so one run's vLLM engine, process group
and memory are gone before the next starts, and a crash loses only that run. Re-running the same
command continues: finished runs (summary.json) are skipped, interrupted ones resumed from their
last checkpoint. A finished run's checkpoints are deleted unless --keep-checkpoints.

Order: seed by seed, and within a seed the settings in an order shuffled per seed (seeded by it),
so the machine's drift over a sweep falls on every setting alike: no setting is always first, or
always after the same one; the order is recorded in compare.json. `--target` fixes the accuracy
the report races to before any run starts: it is recorded in every run's config (`eval.target`)
and in compare.json, with the seeds planned for each setting (a plan grows with later calls, never
shrinks: a later call may give the headline more seeds than the controls).

A finished run that got less than its share of the machine (harness.disturbed: something else ran
beside it) is set aside under .disturbed/ and run once more, in its place in the order; a second
such run is kept and flagged. compare.json's "redone" lists both, with the reason.

An algorithm setting is a registered name with optional algo_args, e.g. `rapid:steps_per_generation=8`
(directory `rapid-steps_per_generation8`, label "rapid (A=8)"). `grpo:replica=1` is the A/A null's
other half: GRPO again under other seeds (seed + 10000), in the same shuffled order as the rest, paired
by the report with GRPO's run of the same base seed (config `pair_seed`, `replica_of`).
"""

from __future__ import annotations

import json
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rapidbench.config import preset_names
from rapidbench.harness import disturbed
from rapidbench.registry import ALGORITHMS


class CompareError(ValueError):
    pass


REPLICA_SEED_OFFSET = 10_000


@dataclass(frozen=True)
class Setting:
    algo: str
    args: tuple[tuple[str, str], ...] = ()
    replica: int = 0  # > 0: the same setting again under seed + replica * REPLICA_SEED_OFFSET

    @property
    def dirname(self) -> str:
        return "-".join([self.algo, *(f"{k}{v}" for k, v in self.args), *([f"replica{self.replica}"] if self.replica else [])])

    @property
    def base_label(self) -> str:
        """How tables name it: "grpo (A=4, std=false)"."""
        short = {"steps_per_generation": "A", "scale_rewards": "std"}
        return f"{self.algo} ({', '.join(f'{short.get(k, k)}={v}' for k, v in self.args)})" if self.args else self.algo

    @property
    def label(self) -> str:
        return f"{self.base_label} [replica {self.replica}]" if self.replica else self.base_label

    def run_seed(self, seed: int) -> int:
        return seed + self.replica * REPLICA_SEED_OFFSET

    def overrides(self, seed: int) -> list[str]:
        extra = [f"replica_of={self.base_label}", f"pair_seed={seed}"] if self.replica else []
        return [f"algo_args.{k}={v}" for k, v in self.args] + [f"label={self.label}", *extra]


def parse_settings(spec: str) -> list[Setting]:
    """'rapid,grpo,rapid:steps_per_generation=8' -> Settings; unknown names fail naming the choices."""
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, *kvs = item.split(":")
        ALGORITHMS.get(name)  # RegistryError names the registered algorithms
        args = []
        for kv in kvs:
            if "=" not in kv:
                raise CompareError(f"--algos item '{item}': expected NAME:key=value[:key=value], got '{kv}'")
            k, v = kv.split("=", 1)
            args.append((k, v))
        replica = [v for k, v in args if k == "replica"]
        if replica and not (replica[0].isdigit() and int(replica[0]) > 0):
            raise CompareError(f"--algos item '{item}': replica is a positive integer, got '{replica[0]}'")
        out.append(Setting(name, tuple((k, v) for k, v in args if k != "replica"), int(replica[0]) if replica else 0))
    if not out:
        raise CompareError("--algos is empty; give e.g. rapid,grpo,ppo")
    return out


def seed_dirname(seed: int) -> str:
    """A run's directory under <root>/<setting>/: the one name compare writes and the report reads."""
    return f"seed{seed}"


def is_seed_dirname(name: str) -> bool:
    m = re.fullmatch(r"\D*(\d+)", name)  # the prefix is seed_dirname's alone: a name is one iff it round-trips
    return m is not None and name == seed_dirname(int(m[1]))


def plan(settings: list[Setting], seeds: list[int], root: Path) -> list[tuple[Setting, int, Path]]:
    """Seed-major, so an interrupted comparison has every setting for its first seeds; within a
    seed the settings shuffled by that seed, so drift and carry-over (what the run before left in
    caches and page cache) do not always hit the same one. Same seeds, same order: a resumed sweep
    continues the plan it started."""
    out = []
    for seed in seeds:
        order = list(settings)
        random.Random(seed).shuffle(order)
        out += [(s, seed, root / s.dirname / seed_dirname(s.run_seed(seed))) for s in order]
    return out


RUN_PY = Path(__file__).resolve().parent.parent / "launchers" / "run.py"
DEFAULT_PRESET = "{algo}-cpu"


def run_command(setting: Setting, seed: int, out: Path, task: str, budget: float, preset: str | None,
                eval_every: float, overrides: list[str], launcher: str = "", target: float | None = None) -> list[str]:
    """The command for one run: `python -m rapidbench run ...`, or `<launcher> launchers/run.py ...`
    (e.g. `deepspeed --num_gpus 4`), which takes the same flags."""
    head = [*_beside_python(shlex.split(launcher)), str(RUN_PY)] if launcher else [sys.executable, "-m", "rapidbench", "run"]
    if (out / "config.json").is_file() or (out / "metrics.jsonl").is_file():
        # started before: the saved config is the run's config; continue from its last checkpoint
        return [*head, "--resume", str(out)]
    cmd = [*head, "--algo", setting.algo, "--task", task, "--seed", str(setting.run_seed(seed)), "--time-budget",
           str(budget), "--output", str(out)]
    # "{algo}-cpu" by default; a preset that does not exist for this algorithm is skipped
    chosen = (DEFAULT_PRESET if preset is None else preset).format(algo=setting.algo)
    if chosen and chosen in preset_names():
        cmd += ["--preset", chosen]
    # Evaluate at the same training-clock times in every run, so curves line up across algorithms.
    cmd += [f"eval.every_seconds={eval_every}", "eval.every_steps=0", *setting.overrides(seed), *overrides]
    if target is not None:
        cmd.append(f"eval.target={target}")
    return cmd


def _beside_python(argv: list[str]) -> list[str]:
    """`deepspeed ...` / `torchrun ...`: the one installed next to this interpreter (the venv's), not
    whatever PATH finds first."""
    if argv and "/" not in argv[0]:
        mine = Path(sys.executable).parent / argv[0]
        if mine.is_file():
            return [str(mine), *argv[1:]]
    return argv


def read_record(root: Path) -> dict:
    """compare.json under `root` ({} where there is none)."""
    try:
        return json.loads((root / "compare.json").read_text())
    except (OSError, ValueError):
        return {}


def planned_seeds(record: dict) -> dict[str, list[int]]:
    """The seeds planned for each setting (directory name) in a compare.json record. A record from
    before per-setting plans ("algos" x "seeds") planned every seed for every setting."""
    if "plan" in record:
        return {k: list(v) for k, v in record["plan"].items()}
    return {a: list(record.get("seeds", [])) for a in record.get("algos", [])}


def grow_plan(plan: dict[str, list[int]], more: dict[str, list[int]]) -> dict[str, list[int]]:
    """A plan only grows: a later call may add settings or seeds (e.g. more seeds for the headline
    alone), never take any away, so a verdict cannot come from a plan cut where it looked good."""
    out = {k: set(v) for k, v in plan.items()}
    for k, v in more.items():
        out.setdefault(k, set()).update(v)
    return {k: sorted(v) for k, v in out.items()}


def _write_record(root: Path, record: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "compare.json").write_text(json.dumps(record, indent=2) + "\n")


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def _name(root: Path, out: Path) -> str:
    return str(out.relative_to(root))


def _redo(root: Path, out: Path, record: dict) -> str | None:
    """Why a finished run is to be run again (harness.disturbed), unless it is already a second
    attempt kept on the record; None for a run that is not finished."""
    if not (out / "summary.json").is_file():
        return None
    kept = {r["run"] for r in record["redone"] if r.get("kept")}
    return None if _name(root, out) in kept else disturbed(_summary(out))


def _set_aside(root: Path, out: Path, why: str) -> dict:
    """Move a disturbed run out of the comparison, kept under root/.disturbed/ (find_runs skips
    hidden directories) without its checkpoints; returns its entry for compare.json's "redone"."""
    dest = root / ".disturbed" / f"{out.parent.name}-{out.name}"
    n = 1
    while dest.exists():
        dest, n = root / ".disturbed" / f"{out.parent.name}-{out.name}-{n}", n + 1
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(out), str(dest))
    shutil.rmtree(dest / "checkpoints", ignore_errors=True)
    return {"run": _name(root, out), "reason": why, "set_aside": _name(root, dest)}


def _recorded_target(root: Path) -> float | None:
    """The target a comparison under `root` was started with, if any."""
    return read_record(root).get("target")


def _hms(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}"


def _check_config(run_argv: list[str]) -> None:
    from rapidbench.cli import build_parser, config_from_args

    args, extra = build_parser().parse_known_args(["run", *run_argv])
    args.overrides = [*args.overrides, *extra]
    config_from_args(args)  # raises ConfigError naming the bad key or value


def _check_same_machine(outs: list[Path]) -> None:
    """Finished runs are reused, not repeated; their times only mean something beside new ones
    made on the same kind of machine."""
    from rapidbench.harness import hardware_tag, machine_info

    here = machine_info()
    key = ("cpu", "cores", "avx512", "avx512_bf16", "gpus")
    for out in outs:
        if not (out / "summary.json").is_file():
            continue
        there = json.loads((out / "summary.json").read_text()).get("machine") or {}
        if any(there.get(k) for k in key) and any(there.get(k) != here.get(k) for k in key):
            raise CompareError(f"{out} was run on {hardware_tag(there)} ({there.get('cpu')}), this machine is "
                               f"{hardware_tag(here)} ({here.get('cpu')}); their wall-clock times do not compare: "
                               "pass another --output")


def compare(task: str, settings: list[Setting], seeds: list[int], budget: float, root: Path,
            preset: str | None = None, eval_every: float | None = None, overrides: list[str] | None = None,
            dry_run: bool = False, keep_checkpoints: bool = False, launcher: str = "",
            target: float | None = None) -> int:
    if budget <= 0:
        raise CompareError(f"--time-budget must be > 0 seconds, got {budget}")
    if target is not None and not 0 < target <= 1:
        raise CompareError(f"--target is a pass@1 in (0, 1], got {target}")
    if preset and not any(preset.format(algo=s.algo) in preset_names() for s in settings):
        raise CompareError(f"unknown preset '{preset}'; presets: {', '.join(preset_names())}")
    recorded = _recorded_target(root)
    if target is not None and recorded not in (None, target):
        raise CompareError(f"{root} holds a comparison started with --target {recorded}; a target is fixed before "
                           "the runs: keep it, or pass another --output")
    target = target if target is not None else recorded
    eval_every = eval_every or round(budget / 8, 1)
    todo = plan(settings, seeds, root)
    for setting, seed, out in todo:  # a bad override fails here, once, before any run starts
        cmd = run_command(setting, seed, out, task, budget, preset, eval_every, overrides or [], target=target)
        if "--resume" not in cmd:
            _check_config(cmd[cmd.index("--algo"):])
    _check_same_machine([out for _, _, out in todo])
    before = read_record(root)
    # The plan only grows (settings and seeds asked for now and before): a verdict needs all of it.
    planned = grow_plan(planned_seeds(before), {s.dirname: seeds for s in settings})
    order = [f"{s.dirname}/seed{s.run_seed(seed)}" for s, seed, _ in todo]
    record = {"task": task, "algos": list(planned), "seeds": sorted({k for v in planned.values() for k in v}),
              "plan": planned, "time_budget": budget,
              "eval_every_seconds": eval_every, "preset": DEFAULT_PRESET if preset is None else preset,
              "overrides": overrides or [], "launcher": launcher, "target": target,
              "order": before.get("order", []) + [o for o in order if o not in before.get("order", [])],
              "redone": before.get("redone", [])}
    left = [out for _, _, out in todo if not (out / "summary.json").is_file() or _redo(root, out, record)]
    if not dry_run and (left or not before):
        # the target, the plan and the order (a grown plan's too) are on record before the first run,
        # so a sweep stopped part-way has still declared what it set out to run
        _write_record(root, {**record, "elapsed_s": before.get("elapsed_s", 0.0)})
    failed, ran, spent = [], 0, []
    t0 = time.monotonic()
    for i, (setting, seed, out) in enumerate(todo, 1):
        head = f"[compare {i}/{len(todo)}] {setting.dirname} seed {setting.run_seed(seed)} -> {out}"
        if out not in left:
            print(f"{head}: done before, skipped", file=sys.stderr, flush=True)
            continue
        per_run = statistics.mean(spent) if spent else budget * 1.5  # a guess until a run has finished
        print(f"{head} | sweep: {_hms(time.monotonic() - t0)} elapsed, about {_hms(per_run * len(left))} left "
              f"({len(left)} run(s))", file=sys.stderr, flush=True)
        for attempt in (1, 2):  # a run something else slowed is run once more; a second such is kept, flagged
            if (why := _redo(root, out, record)) and not dry_run:
                record["redone"].append(_set_aside(root, out, why))
                _write_record(root, {**record, "elapsed_s": (before or {}).get("elapsed_s", 0.0)})
                print(f"{head}: {why} (something else ran beside it): set aside, run again", file=sys.stderr, flush=True)
            cmd = run_command(setting, seed, out, task, budget, preset, eval_every, overrides or [], launcher, target)
            print(f"  $ {' '.join(cmd)}", file=sys.stderr, flush=True)
            if dry_run:
                break
            t_run = time.monotonic()
            rc = subprocess.run(cmd).returncode
            spent.append(time.monotonic() - t_run)
            ran += 1
            if rc != 0 or not (why := _redo(root, out, record)):
                break
            if attempt == 2:
                record["redone"].append({"run": _name(root, out), "reason": why, "kept": True})
        left.remove(out)
        if not dry_run and rc != 0:
            failed.append(f"{setting.dirname}/seed{setting.run_seed(seed)} (exit {rc})")
        elif not keep_checkpoints and (out / "summary.json").is_file():
            # a finished run's curves are its product; its final checkpoint is ~12 bytes/parameter
            shutil.rmtree(out / "checkpoints", ignore_errors=True)
    if ran:  # all skipped: the record of the comparison that made them stays as it was
        _write_record(root, {**record, "elapsed_s": round((before or {}).get("elapsed_s", 0.0) + time.monotonic() - t0, 1)})
    if failed:
        print(f"rapidbench: error: {len(failed)} run(s) failed: {', '.join(failed)}; "
              "re-run the same command to resume them", file=sys.stderr)
        return 1
    return 0
