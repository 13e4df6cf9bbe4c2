"""One run: build the pieces from a Config through the registries, then the loop.

    generate -> grade -> pi_old (and ref) log-probs -> advantages -> A optimizer steps -> sync -> eval

Nothing here tests an algorithm's or task's name: it asks the objects (`algo.needs`,
`algo.steps_per_generation`, ...).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rapidbench import distributed
from rapidbench.checkpoint import Checkpoints
from rapidbench.config import Config, ConfigError
from rapidbench.harness import Clock, ExternalLog, LoadMeter, Progress, RunFiles, machine_info, pass_at_k, peak_rss_mib, read_jsonl
from rapidbench.models import resolve_model
from rapidbench.registry import ALGORITHMS, SAMPLERS, TASKS, TRAINERS
from rapidbench.rollouts import Completion, build_rollouts, concat
from rapidbench.distributed import all_reduce_mean
from rapidbench.samplers.base import SamplingParams
from rapidbench.steps import optimizer_steps
from rapidbench.tasks.base import Grade, Problem


class ProblemStream:
    """Seeded endless shuffled pass over the training problems; its cursor is checkpointed."""

    def __init__(self, n: int, seed: int, epoch: int = 0, pos: int = 0):
        self.n, self.seed, self.epoch, self.pos = n, seed, epoch, pos
        self._order = self._shuffle()

    def _shuffle(self) -> list[int]:
        order = list(range(self.n))
        random.Random(self.seed * 100_003 + self.epoch).shuffle(order)
        return order

    def take(self, k: int) -> list[int]:
        out = []
        while len(out) < k:
            if self.pos >= self.n:
                self.epoch, self.pos = self.epoch + 1, 0
                self._order = self._shuffle()
            out.append(self._order[self.pos])
            self.pos += 1
        return out

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}


@dataclass
class LoopState:
    step: int = 0  # optimizer steps done
    generation: int = 0
    wall_s: float = 0.0
    off_clock_s: float = 0.0
    stream: dict[str, int] = field(default_factory=lambda: {"epoch": 0, "pos": 0})


def crossed(before: int, now: int, every: int) -> bool:
    """Did the step count pass a multiple of `every` (0 = never) going from `before` to `now`?"""
    return bool(every) and now // every > before // every


def staleness_canary(trainer_logps: torch.Tensor, behaviour_logps: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean token ratio pi_trainer / pi_sampler right after a sync: ~1 unless weights are stale. [N, T] -> float."""
    return float((torch.exp(trainer_logps - behaviour_logps) * mask).sum() / mask.sum().clamp(min=1))


class Run:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.load = LoadMeter()
        self.world, self.rank = distributed.world_size(), distributed.rank()
        try:  # first: a logger asked for but not installed stops the run before anything is written
            self.external = ExternalLog(cfg.loggers, Path(cfg.output), cfg.to_dict(), self.rank)
        except ValueError as e:
            raise ConfigError(str(e)) from e
        self.files = RunFiles(Path(cfg.output), self.rank)
        self.ckpts = Checkpoints(self.files.root / "checkpoints", self.rank, keep=cfg.train.keep_checkpoints)
        self.progress = Progress(self.files.log, cfg.progress, self.rank)
        try:  # option values a plugin rejects (a bad arith level, G < 1, no train split...) are config errors
            self.task = TASKS.get(cfg.task)(cfg.task_args, seed=cfg.seed)
            self.train_problems = self.task.train_problems()  # before any engine is built
            self.test_problems = self.task.test_problems()[: cfg.eval.num_problems]
            self.algo = ALGORITHMS.get(cfg.algo)(cfg.algo_args)
            if self.world > 1:
                self.algo.reduce_sum = distributed.all_reduce_tensor_sum  # batch-wide statistics span ranks
            self._check_shapes()
        except ConfigError:
            raise
        except ValueError as e:
            raise ConfigError(str(e)) from e  # plugins' messages name themselves ("arith: unknown level ...")
        self.model_path = resolve_model(cfg.model)
        self.gen_params = SamplingParams(
            cfg.generation.max_new_tokens, cfg.generation.temperature, cfg.generation.top_p, cfg.generation.top_k
        )
        mini_batch = cfg.algo_args.prompts_per_step * self.algo.group_size
        steps_hint = cfg.max_steps or 1000
        self.trainer = TRAINERS.get(cfg.trainer)(
            self.model_path, cfg.train, mini_batch=mini_batch, temperature=cfg.generation.temperature,
            needs=self.algo.needs, total_steps=steps_hint, seed=cfg.seed, group_size=self.algo.group_size,
        )
        self.sampler = SAMPLERS.get(cfg.sampler)(self.model_path, cfg.sampler_args, seed=cfg.seed + self.rank)
        self.setup_rss_mib = peak_rss_mib()  # engines built, before any batch (Adam's state comes lazily)
        self.tok = self.sampler.tokenizer
        self._prompt_cache: dict[str, list[int]] = {}
        self._last_acc: float | None = None  # latest held-out pass@1, for the progress line

    def _check_shapes(self) -> None:
        B, W = self.cfg.algo_args.prompts_per_step, self.world
        if B % W:
            raise ValueError(f"algo_args.prompts_per_step={B} must be divisible by the {W} data-parallel ranks")

    # -- helpers ----------------------------------------------------------------------------------
    def prompt_ids(self, p: Problem) -> list[int]:
        if p.id not in self._prompt_cache:
            text = self.task.render_prompt(p, self.tok)
            # The chat template already holds the special tokens: add none.
            self._prompt_cache[p.id] = self.tok(text, add_special_tokens=False)["input_ids"]
        return self._prompt_cache[p.id]

    def sync(self) -> float:
        t0 = time.perf_counter()
        self.sampler.update_weights(self.trainer.named_params())
        return time.perf_counter() - t0

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(self, step: int, clock: Clock) -> dict[str, Any]:
        ev = self.cfg.eval
        mine = self.test_problems[self.rank :: self.world]
        params = SamplingParams(ev.max_new_tokens or self.gen_params.max_new_tokens, ev.temperature,
                                1.0, -1)
        n = ev.n_samples
        with clock.phase("eval"):
            self.load.probe()  # the host's speed mid-run, off the training clock
            t0 = time.perf_counter()
            correct = [0] * len(mine)
            # In pieces, so the progress line moves during an evaluation that takes minutes (GPU presets);
            # at most 8, of >= 64 prompts each, so the sampler's batches stay large.
            piece = -(-len(mine) // min(8, max(1, len(mine) // 64)))
            for start in range(0, len(mine), piece):
                part = mine[start : start + piece]
                self.progress.line(f"step {step} | eval {start}/{len(mine)} problems x {n} | {time.perf_counter() - t0:.0f}s")
                # The run's seed is in it: seeds of one setting draw independently, as the
                # interval over seeds assumes (with a shared draw, all start at the same pass@1).
                comps = self.sampler.generate([self.prompt_ids(p) for p in part], n, params,
                                              seed=self.cfg.seed * 999_983 + 10_007 + step + 7919 * start)
                grades = self.task.grade_many([part[c.prompt_index] for c in comps], [c.text for c in comps])
                for c, g in zip(comps, grades):
                    correct[start + c.prompt_index] += int(g.passed)
                if start == 0:
                    self._log_samples(step, [(part[c.prompt_index], c, g) for c, g in zip(comps, grades)])
            ks = sorted({k for k in ev.k if k <= n} | {1})
            local = [sum(pass_at_k(n, c, k) for c in correct) for k in ks] + [float(len(mine))]
            sums = all_reduce_mean(local)  # mean of sums; the ratio is what we want
            _test_eval_skew(self.rank)
            eval_s = time.perf_counter() - t0
        row = {"step": step, "wall_s": round(clock.training_s(), 3), "eval_s": round(eval_s, 3),
               "n_problems": len(self.test_problems), "n_samples": n}
        for k, s in zip(ks, sums[:-1]):
            row[f"pass@{k}"] = round(s / max(1e-9, sums[-1]), 6)
        self.files.append(self.files.evals, row)
        self.external.log(row, "eval")
        return row

    def _log_samples(self, step: int, graded: list[tuple[Problem, Completion, Grade]]) -> None:
        """The first `eval.log_samples` graded completions (rank 0's first problems, all their
        samples): the same problems at every evaluation, so the rows show how the answers changed."""
        for p, c, g in graded[: self.cfg.eval.log_samples]:
            self.files.append(self.files.samples, {
                "step": step, "problem": p.id, "prompt": p.prompt, "completion": c.text, "tokens": len(c.token_ids),
                "finish": c.finish_reason, "reward": round(g.reward, 6), "passed": g.passed, "detail": g.detail})

    # -- checkpoint -------------------------------------------------------------------------------
    def checkpoint(self, state: LoopState, clock: Clock) -> None:
        with clock.phase("ckpt"):
            state.off_clock_s = clock.off_clock
            self.ckpts.save(self.trainer, f"step{state.step:07d}", {"loop": dict(state.__dict__), "rng": _rng_state()})

    def restore(self) -> LoopState:
        found = self.ckpts.load(self.trainer)
        if found is None:
            self.progress.message(f"[rapidbench] no usable checkpoint in {self.ckpts.root}: starting from step 0")
            self.files.truncate_rows_after(-1)  # all of them: step 0's evaluation is redone too
            return LoopState()
        tag, client = found
        state = LoopState(**client["loop"])
        _set_rng_state(client["rng"])
        # Rows written after the checkpoint are redone: the resumed files have no gap and no duplicate.
        self.files.truncate_rows_after(state.step)
        self.sync()
        self.progress.message(f"[rapidbench] resumed from {tag}: step {state.step}, {state.wall_s:.0f}s of training")
        return state

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        resuming = bool(cfg.resume)
        state = self.restore() if resuming else LoopState()
        clock = Clock(offset=state.wall_s, off_clock_offset=state.off_clock_s)
        stream = ProblemStream(len(self.train_problems), cfg.seed, **state.stream)
        gen = torch.Generator()
        algo = self.algo
        old_source = self.old_logprob_source()
        self.progress.message(f"[rapidbench] {cfg.algo} ({algo.describe()}) on {cfg.task} with {cfg.model}, "
                              f"sampler {self.sampler.name}, ZeRO-{cfg.train.zero_stage}, {self.world} rank(s) -> {cfg.output}")
        last_eval = None
        if cfg.eval.at_start and state.step == 0 and not read_jsonl(self.files.evals):
            last_eval = self.evaluate(0, clock)
            self._report_eval(last_eval, clock)
        next_eval = self._next_eval_time(clock)
        # a run resumed from its final checkpoint has nothing left to do
        stop = bool(cfg.max_steps and state.step >= cfg.max_steps) or bool(cfg.time_budget and state.wall_s >= cfg.time_budget)
        while not stop:
            # ---- inference phase: pi_old frozen, A*B prompts x G completions --------------------------
            gen.manual_seed(cfg.seed * 7919 + state.generation)  # per generation: a resumed run shuffles alike
            self.progress.line(self._status(state, "gen", clock))
            rollouts, first_rewards, gen_s, grade_s, short = self._sample(state, stream, clock)
            self.sampler.sleep()
            algo.shape_rewards(rollouts, cfg.generation.max_new_tokens)
            # Reward stats of the first sampling round: an unbiased sample of the policy's task reward.
            # The longest completion sets how many decode steps a generation takes (the cost model's L_max;
            # each rank's own, averaged over ranks).
            reward_mean, reward_std, tokens, longest = all_reduce_mean(
                [float(first_rewards.mean()), float(first_rewards.std()) if len(first_rewards) > 1 else 0.0,
                 float(rollouts.num_tokens), float(rollouts.completion_mask.sum(1).max())])
            # ---- pi_old, reference, advantages (once, inside the first step), then A optimizer steps --
            batches = algo.minibatches(rollouts, gen)
            steps = optimizer_steps(self.trainer, algo, rollouts, batches, old_source)
            step_before = state.step
            for j in range(len(batches)):
                t0, rows0 = time.perf_counter(), self.trainer.policy_rows
                self.progress.line(self._status(state, f"train {j + 1}/{len(batches)}", clock, reward_mean))
                with clock.phase("train"):
                    mb, stats = next(steps)
                train_s = time.perf_counter() - t0
                if j == 0:
                    # The ratio pi_trainer / pi_sampler right after the sync: the trainer's pi_old of the first
                    # mini-batch, or, with pi_old from the sampler, the first step's own ratio.
                    canary = (staleness_canary(mb.old_logps, mb.behaviour_logps, mb.completion_mask)
                              if old_source == "trainer" else stats["ratio_mean"])
                    canary = all_reduce_mean([canary])[0]
                    self._check_canary(canary)
                state.step += 1
                last = j == len(batches) - 1
                # Clocks differ between ranks (engines start at different times): rank 0 decides for all,
                # or one rank would stop while another enters the next step's collectives.
                now = clock.training_s()
                out_of_time, eval_due = self._agree(bool(cfg.time_budget) and now >= cfg.time_budget, now >= next_eval)
                stop = (bool(cfg.max_steps) and state.step >= cfg.max_steps) or out_of_time
                sync_s = 0.0
                if last or stop:
                    self.progress.line(self._status(state, "sync", clock, reward_mean))
                    with clock.phase("sync"):
                        sync_s = self.sync()
                row = {
                    "step": state.step, "generation": state.generation, "wall_s": round(clock.training_s(), 3),
                    "gen_s": round(gen_s if j == 0 else 0.0, 4), "grade_s": round(grade_s if j == 0 else 0.0, 4),
                    "sync_s": round(sync_s, 4), "train_s": round(train_s, 4),
                    "reward_mean": round(reward_mean, 6), "reward_std": round(reward_std, 6),
                    "tokens": int(tokens * self.world) if j == 0 else 0, "samples": mb.size * self.world,
                    "longest": round(longest, 1) if j == 0 else 0,
                    "staleness_canary": round(canary, 6),
                    # policy forward rows (training and no-grad passes) per trained row: what each step paid for
                    "fwd_per_sample": round((self.trainer.policy_rows - rows0) / max(1, mb.size), 4),
                }
                if algo.max_refill:
                    row["groups_short"] = short
                row.update({k: (round(v, 6) if isinstance(v, float) else v) for k, v in stats.items()})
                self.files.append(self.files.metrics, row)
                self.external.log(row, "train")
                if stop:
                    break
                if not last and eval_due:
                    # Due inside a generation: evaluate now, not at its end, so every setting is
                    # evaluated within one optimizer step of the same clock times whatever its A.
                    # The sampler holds pi_old: sync it for the evaluation, off the clock (the next
                    # generation syncs again on the clock, as it always does).
                    with clock.phase("eval"):
                        self.sync()
                    last_eval = self.evaluate(state.step, clock)
                    self._report_eval(last_eval, clock)
                    next_eval = self._next_eval_time(clock)
                    with clock.phase("eval"):  # back to sleep for the steps left: only A > 1 gets here
                        self.sampler.sleep()
            state.generation += 1
            state.wall_s, state.off_clock_s, state.stream = clock.training_s(), clock.off_clock, stream.state()
            # ---- evaluation and checkpoint, off the training clock -------------------------------
            (due_time,) = self._agree(clock.training_s() >= next_eval)
            if stop or crossed(step_before, state.step, cfg.eval.every_steps) or due_time:
                last_eval = self.evaluate(state.step, clock)
                next_eval = self._next_eval_time(clock)
                self._report_eval(last_eval, clock)
            if stop or crossed(step_before, state.step, cfg.train.checkpoint_every):
                self.checkpoint(state, clock)
        return self._finish(state, clock, last_eval)

    def _next_eval_time(self, clock: Clock) -> float:
        """The next point of the fixed grid k * eval.every_seconds after now (inf when off): a grid,
        not now + every, so late evaluations do not push every later one back."""
        every = self.cfg.eval.every_seconds
        return every * (math.floor(clock.training_s() / every) + 1) if every else math.inf

    def _sample(self, state: LoopState, stream: ProblemStream, clock: Clock):
        """Generate and grade this rank's share of a generation's prompts x G completions.

        Rows the algorithm does not `keep` (DAPO: groups with equal rewards) are replaced by
        sampling more prompts, up to `algo.max_refill` extra rounds; all ranks do the same number
        of rounds. If still short, dropped groups fill the batch so its shape stays fixed.
        Returns (rollouts, first-round task rewards [n], gen_s, grade_s, groups short).
        """
        algo, cfg = self.algo, self.cfg
        need = algo.prompts_per_generation // self.world  # groups this rank trains on
        batches, gen_s, grade_s = [], 0.0, 0.0
        for rnd in range(1 + algo.max_refill):
            ids = stream.take(algo.prompts_per_generation)  # every rank takes the same ids: streams stay in step
            mine = [self.train_problems[i] for i in ids[self.rank :: self.world]]
            prompt_ids = [self.prompt_ids(p) for p in mine]
            t0 = time.perf_counter()
            with clock.phase("gen"):
                comps = self.sampler.generate(prompt_ids, algo.group_size, self.gen_params,
                                              seed=cfg.seed * 1_000_003 + (state.generation * 8 + rnd) * self.world + self.rank)
            gen_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            with clock.phase("grade"):
                grades = self.task.grade_many([mine[c.prompt_index] for c in comps], [c.text for c in comps])
            grade_s += time.perf_counter() - t0
            batches.append(build_rollouts(prompt_ids, comps, [g.reward for g in grades], pad_id=self.tok.pad_token_id or 0,
                                          group_offset=state.generation * 100_000 + rnd * 10_000 + self.rank * 1_000))
            kept = sum(len(torch.unique(b.group[algo.keep(b)])) for b in batches)
            if all_reduce_mean([float(kept >= need)])[0] == 1.0:
                break
        everything = concat(batches)
        keep = algo.keep(everything)
        order = [*torch.unique(everything.group[keep]).tolist(), *torch.unique(everything.group[~keep]).tolist()]
        chosen = order[:need]
        rows = torch.cat([torch.nonzero(everything.group == g).flatten() for g in chosen])
        short = max(0, need - len(torch.unique(everything.group[keep])))
        return everything.select(rows), batches[0].rewards, gen_s, grade_s, short

    def old_logprob_source(self) -> str:
        """Where pi_old comes from. `auto`: the sampler's behaviour log-probs when sampler and trainer
        both compute in fp32 (they agree to ~1e-5, see tests/test_sampler.py, and a whole forward pass
        per generation is saved), else the trainer recomputes them (bf16 kernels differ)."""
        choice = self.cfg.train.old_logprobs
        if choice != "auto":
            return choice
        both_fp32 = self.trainer.dtype == torch.float32 and getattr(self.sampler, "dtype", None) == torch.float32
        return "sampler" if both_fp32 else "trainer"

    def _agree(self, *mine: bool) -> list[bool]:
        """Rank 0's answers, on every rank (decisions taken once and shared), in one collective."""
        if self.world == 1:
            return list(mine)
        return [x > 0.5 for x in distributed.all_reduce_sum([float(m) if self.rank == 0 else 0.0 for m in mine])]

    def _check_canary(self, canary: float) -> None:
        tol = self.cfg.sampler_args.staleness_tolerance
        if abs(canary - 1) > tol:
            self.progress.warn(f"[rapidbench] WARNING: staleness canary {canary:.4f} (mean pi_trainer/pi_sampler on "
                                  f"the first step after a sync) is off 1 by more than {tol}: sampler weights may be "
                                  "stale or log-probs inconsistent")

    def _status(self, state: LoopState, phase: str, clock: Clock, reward: float | None = None) -> str:
        s = f"step {state.step}" + (f"/{self.cfg.max_steps}" if self.cfg.max_steps else "") + f" | {phase:<11}"
        if reward is not None:
            s += f" | reward {reward:.3f}"
        if self._last_acc is not None:
            s += f" | pass@1 {self._last_acc:.3f}"
        s += f" | train clock {clock.training_s():7.1f}s"
        if self.cfg.time_budget:
            s += f" ({max(0.0, self.cfg.time_budget - clock.training_s()):.0f}s left)"
        return s

    def _report_eval(self, row: dict[str, Any], clock: Clock) -> None:
        self._last_acc = row.get("pass@1")
        extra = " ".join(f"{k}={v:.3f}" for k, v in row.items() if k.startswith("pass@"))
        self.progress.message(f"[eval] step {row['step']} train clock {row['wall_s']:.1f}s {extra} (eval took {row['eval_s']:.1f}s)")

    def _finish(self, state: LoopState, clock: Clock, last_eval: dict | None) -> dict[str, Any]:
        metrics = read_jsonl(self.files.metrics) if self.rank == 0 else []
        evals = read_jsonl(self.files.evals) if self.rank == 0 else []
        phases = {k: 0.0 for k in ("gen_s", "grade_s", "sync_s", "train_s")}
        for r in metrics:
            for k in phases:
                phases[k] += r.get(k, 0.0)
        summary = {
            "algo": self.cfg.algo, "task": self.cfg.task, "model": self.cfg.model, "seed": self.cfg.seed,
            "steps": state.step, "generations": state.generation, "train_wall_s": round(state.wall_s, 3),
            "eval_s": round(sum(e.get("eval_s", 0.0) for e in evals), 3),
            "ckpt_s": round(clock.totals.get("ckpt", 0.0), 3),
            "phases_s": {k: round(v, 3) for k, v in phases.items()},
            "final_eval": last_eval or (evals[-1] if evals else None),
            "initial_eval": evals[0] if evals else None,
            "reward_first": metrics[0]["reward_mean"] if metrics else None,
            "reward_last": metrics[-1]["reward_mean"] if metrics else None,
            "world_size": self.world, "sampler": self.sampler.name,
            "dtype": {"trainer": str(self.trainer.dtype).replace("torch.", ""),
                      "sampler": str(getattr(self.sampler, "dtype", "?")).replace("torch.", ""),
                      "old_logprobs": self.old_logprob_source()},
            "peak_rss_mib": peak_rss_mib(), "setup_peak_rss_mib": self.setup_rss_mib, "machine": machine_info(),
            "load": self.load.summary(),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        self.files.write_json(self.files.summary, summary)
        self.progress.message(f"[rapidbench] done: {state.step} steps in {state.wall_s:.1f}s of training; "
                              f"summary in {self.files.summary}")
        self.progress.close()
        self.external.close()
        self.sampler.close()
        return summary


def _test_eval_skew(rank: int) -> None:
    """Test hook: RAPIDBENCH_TEST_EVAL_SKEW="RANK:SECONDS" makes that rank's evaluations longer. It is
    how ranks' clocks drift apart: the slow rank's extra time is off its clock, while the others
    wait for it in the next generation, on theirs (tests/test_multiprocess.py)."""
    import os

    spec = os.environ.get("RAPIDBENCH_TEST_EVAL_SKEW", "")
    if spec and int(spec.split(":")[0]) == rank:
        time.sleep(float(spec.split(":")[1]))


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "python": random.getstate()}


def _set_rng_state(s: dict[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    random.setstate(s["python"])


def run(cfg: Config) -> dict[str, Any]:
    """Entry used by the CLI: saves the resolved config, then runs."""
    runner = Run(cfg)
    if runner.rank == 0:
        cfg.save(runner.files.config)
    return runner.run()

