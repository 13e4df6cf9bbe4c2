"""Trainer throughput on the embedded default's real step shape, against this machine's own peak.

The batch is a real GRPO step of the embedded default: 4 `arith` prompts (chat template) x G = 4
completions sampled by the model itself (HF generate, T = 0.7, <= 48 new tokens). Model FLOPs are
counted on real tokens only (6 x non-embedding parameters per token, the vocabulary projection on
completion tokens, causal attention), so padding counts as waste. The peak is a 2048^3 matmul in
the trainer's dtype and in fp32, measured in this run.

Part 1, the changes one at a time, each in its own process (peak RSS is its own), cumulative:
  before   the trainer as it was: the model's own head (fp32 log-softmax over every completion
           position, padding included), sdpa attention, a for-loop AdamW, one micro-batch of 16
  +head    vocabulary projection and log-softmax on real tokens only, chunked (rapidbench/logprobs.py)
  +fused   torch's fused AdamW kernel
  +eager   eager attention instead of the CPU sdpa kernel
  +sorted  length-sorted micro-batches of 8 (less padding)       = the trainer now
  compile  + torch.compile of each decoder layer: faster once compiled, not adopted (below)
torch.compile is not adopted: every new shape class and the no-grad passes compile again on the
training clock; over 16 steps of varied real batches with a no-grad pass every 4th, the compiled
trainer took 44.8 s and the plain one 38.8 s on the AMD AVX512-BF16 machine.
Part 2, DeepSpeed's overhead: the trainer now at ZeRO 0-3 vs a plain torch loop, fp32.

Writes results/bench/<tag>/trainer_step.json; the last line is the speed-up of the trainer now.

    python benchmarks/trainer_step.py [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
VARIANTS = ["before", "+head", "+fused", "+eager", "+sorted", "compile"]
ZERO = ["plain", "zero0", "zero1", "zero2", "zero3"]


def real_batch(path: str):
    """One real step of the embedded default (cached next to the model)."""
    import pickle

    import torch

    from rapidbench.config import SamplerConfig
    from rapidbench.registry import SAMPLERS, TASKS
    from rapidbench.rollouts import build_rollouts
    from rapidbench.samplers.base import SamplingParams

    cache = Path(path) / "rapidbench_bench_batch.pkl"
    if cache.is_file():
        return pickle.loads(cache.read_bytes())
    task = TASKS.get("arith")(TASKS.get("arith").Options())
    sampler = SAMPLERS.get("hf")(path, SamplerConfig(dtype="float32"), seed=0)
    tok = sampler.tokenizer
    prompts = [tok(task.render_prompt(p, tok), add_special_tokens=False)["input_ids"] for p in task.train_problems()[:4]]
    comps = sampler.generate(prompts, 4, SamplingParams(48, 0.7, 1.0, -1), seed=0)
    ro = build_rollouts(prompts, comps, [float(i % 2) for i in range(len(comps))], pad_id=tok.pad_token_id or 0)
    torch.manual_seed(0)
    cache.write_bytes(pickle.dumps(ro))
    return ro


def model_flops(model, ro) -> float:
    """Training FLOPs (forward + backward) of the real tokens of `ro`."""
    import torch

    def numel(p):  # ZeRO-3 partitions parameters: their full size is ds_numel
        return getattr(p, "ds_numel", p.numel())

    cfg = model.config
    embed = numel(model.get_input_embeddings().weight)
    body = sum(numel(p) for p in model.parameters()) - embed
    if not cfg.tie_word_embeddings:
        body -= numel(model.get_output_embeddings().weight)
    lengths = ro.attention_mask.sum(1).double()  # [n]
    completion = float(ro.completion_mask.sum())
    attention = 6 * cfg.num_hidden_layers * cfg.hidden_size * float((lengths**2).sum())  # causal: half of 12
    return 6 * body * float(lengths.sum()) + 6 * embed * completion + attention


def matmul_peak(dtype) -> float:
    import torch

    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(5):
        a @ b
    return 2 * 2048**3 * 5 / (time.perf_counter() - t0)


def one(setting: str, args) -> dict:
    import torch

    import rapidbench.logprobs as lp
    from rapidbench.algorithms.base import LossInputs
    from rapidbench.algorithms.grpo import GRPO, GRPOOptions
    from rapidbench.config import TrainConfig
    from rapidbench.distributed import setup_distributed
    from rapidbench.models import resolve_model
    from rapidbench.trainer import DeepSpeedTrainer

    path = resolve_model(args.model)
    ro = real_batch(path)
    algo = GRPO(GRPOOptions(group_size=4, prompts_per_step=4))
    ro.old_logps = ro.behaviour_logps
    algo.advantages(ro)
    compile_s = None
    if setting == "plain":
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
        opt = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=True)
        dtype = torch.float32

        def step():
            logps = lp.token_logprobs(model, ro.input_ids, ro.attention_mask, ro.prompt_len, 0.7, ro.completion_mask)
            loss, _ = algo.loss(LossInputs(logps, ro.old_logps, ro.completion_mask, ro.advantages, float(ro.size)))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
    else:
        setup_distributed()
        at = VARIANTS.index(setting) if setting in VARIANTS else len(VARIANTS)
        if at < VARIANTS.index("+head"):
            lp._plain_head = lambda net: False  # the model's own head over every completion position
        cfg = TrainConfig(
            dtype="float32" if setting in ZERO else "auto", lr=1e-6,
            zero_stage=int(setting[-1]) if setting in ZERO else 0,
            adam_implementation="fused" if at >= VARIANTS.index("+fused") else "for-loop",
            attn_implementation="eager" if at >= VARIANTS.index("+eager") else "sdpa",
            micro_batch_size=8 if at >= VARIANTS.index("+sorted") else 16)
        trainer = DeepSpeedTrainer(path, cfg, mini_batch=ro.size, temperature=0.7, needs=algo.needs, total_steps=100,
                                   group_size=4)
        model, dtype = trainer.engine.module, trainer.dtype
        if setting == "compile":
            for layer in model.get_decoder().layers:
                layer.compile(dynamic=True)

        def step():
            trainer.step(ro, algo, old_is_current=True)
    t0 = time.perf_counter()
    step()  # warm-up (DeepSpeed builds its buffers on the first step; compile compiles)
    if setting == "compile":
        compile_s = round(time.perf_counter() - t0, 1)
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    dt = sorted(times)[len(times) // 2]  # median: robust to a noisy neighbour
    flops = model_flops(model, ro)
    peak = matmul_peak(dtype)
    return {"setting": setting, "dtype": str(dtype).replace("torch.", ""), "step_s": round(dt, 3),
            "steps_s": [round(t, 3) for t in times], "real_tokens": int(ro.attention_mask.sum()),
            "padded_tokens": int(ro.attention_mask.numel()), "tokens_per_s": round(int(ro.attention_mask.sum()) / dt, 1),
            "model_tflops": round(flops / dt / 1e12, 4), "peak_tflops": round(peak / 1e12, 3),
            "share_of_peak": round(flops / dt / peak, 3), "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
            **({"first_step_s": compile_s} if compile_s is not None else {})}


def run_all(names: list[str], args) -> list[dict]:
    rows = []
    for s in names:
        r = subprocess.run([sys.executable, __file__, "--only", s, "--model", args.model, "--steps", str(args.steps)],
                           capture_output=True, text=True)
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
        rows.append(json.loads(line[0][7:]) if not r.returncode and line
                    else {"setting": s, "error": (r.stderr.strip().splitlines() or ["?"])[-1][:300]})
        print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--only")
    args = ap.parse_args()
    if args.only:
        print("RESULT " + json.dumps(one(args.only, args)), flush=True)
        sys.exit(0)
    from common import headline, write

    variants, zero = run_all(VARIANTS, args), run_all(ZERO, args)
    by = {r["setting"]: r for r in variants + zero}
    for rows, base in ((variants, by["before"]), (zero, by["plain"])):
        for r in rows:
            if "tokens_per_s" in r and "tokens_per_s" in base:
                r["speed_vs_" + base["setting"]] = round(r["tokens_per_s"] / base["tokens_per_s"], 3)
    now, before = by["+sorted"], by["before"]
    gain = now.get("speed_vs_before")
    head = headline("training tokens/s, trainer now / before (embedded default's real GRPO step)", gain,
                    f"{now.get('dtype')}, median of {args.steps} steps after a warm-up, each variant in its own process; "
                    f"{now.get('model_tflops')} model TFLOP/s = {now.get('share_of_peak')} of this machine's measured "
                    f"{now.get('peak_tflops')} TFLOP/s {now.get('dtype')} matmul peak (before: {before.get('share_of_peak')}); "
                    f"peak RSS {before.get('peak_rss_gib')} -> {now.get('peak_rss_gib')} GiB; per change: "
                    + ", ".join(f"{r['setting']} {r.get('speed_vs_before')}x" for r in variants),
                    target=">= 2 and >= 0.35 of peak", met=bool(gain and gain >= 2 and now.get("share_of_peak", 0) >= 0.35))
    out = write("trainer_step", {"model": args.model, "variants": variants, "zero_stages": zero}, head)
    print(f"wrote {out}")
    print(f"trainer now / before: {gain}x tokens/s, {now.get('share_of_peak')} of measured peak")
