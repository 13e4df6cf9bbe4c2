"""Trainer step throughput and peak memory per ZeRO stage vs a plain torch loop, same model, same
batch, same loss (GRPO on a fixed batch). Each setting runs in its own process so its peak RSS is
its own. Writes results/bench/<tag>/trainer_step.json; the last line printed is the overhead ratio.

    python benchmarks/trainer_step.py [--model smollm2-135m] [--steps 3] [--batch 16] [--len 96]
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
SETTINGS = ["plain", "zero0", "zero1", "zero2", "zero3"]


def batch(n: int, length: int, pad_id: int):
    import torch

    from rapidbench.rollouts import Completion, build_rollouts

    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(100, 40000, (length // 2,), generator=g).tolist() for _ in range(n // 4)]
    comps = [Completion(i // 4, torch.randint(100, 40000, (length // 2,), generator=g).tolist(), "",
                        [-1.0] * (length // 2), "length") for i in range(n)]
    return build_rollouts(prompts, comps, [float(i % 2) for i in range(n)], pad_id=pad_id)


def one(setting: str, args) -> dict:
    import torch

    from rapidbench.algorithms.grpo import GRPO, GRPOOptions
    from rapidbench.algorithms.base import LossInputs
    from rapidbench.config import TrainConfig
    from rapidbench.models import resolve_model
    from rapidbench.distributed import setup_distributed
    from rapidbench.trainer import DeepSpeedTrainer, token_logprobs

    path = resolve_model(args.model)
    algo = GRPO(GRPOOptions(group_size=4, prompts_per_step=args.batch // 4))
    ro = batch(args.batch, args.len, 0)
    ro.old_logps = ro.behaviour_logps
    algo.advantages(ro)
    tokens = int(ro.attention_mask.sum())
    if setting == "plain":
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-6)

        def step():
            lp = token_logprobs(model, ro.input_ids, ro.attention_mask, ro.prompt_len, 0.7)
            loss, _ = algo.loss(LossInputs(lp, ro.old_logps, ro.completion_mask, ro.advantages, float(ro.size)))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
    else:
        setup_distributed()
        # fp32 like the plain loop (on AVX512-BF16/AMX `auto` would pick bf16, a different computation)
        cfg = TrainConfig(dtype="float32", lr=1e-6, micro_batch_size=args.batch, zero_stage=int(setting[-1]))
        trainer = DeepSpeedTrainer(path, cfg, mini_batch=args.batch, temperature=0.7, needs=algo.needs, total_steps=10)

        def step():
            trainer.step(ro, algo)
    step()  # warm-up (DeepSpeed builds its buffers on the first step)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    dt = (time.perf_counter() - t0) / args.steps
    return {"setting": setting, "step_s": round(dt, 3), "tokens_per_s": round(tokens / dt, 1),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3), "tokens": tokens}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--len", type=int, default=96)
    ap.add_argument("--only", choices=SETTINGS)
    args = ap.parse_args()
    if args.only:
        print("RESULT " + json.dumps(one(args.only, args)), flush=True)
        sys.exit(0)
    from common import headline, write

    rows = []
    for s in SETTINGS:
        cmd = [sys.executable, __file__, "--only", s, "--model", args.model, "--steps", str(args.steps),
               "--batch", str(args.batch), "--len", str(args.len)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
        if r.returncode or not line:
            rows.append({"setting": s, "error": (r.stderr.strip().splitlines() or ["?"])[-1][:300]})
        else:
            rows.append(json.loads(line[0][7:]))
        print(rows[-1], flush=True)
    plain = next(r for r in rows if r["setting"] == "plain")
    for r in rows:
        if "tokens_per_s" in r:
            r["speed_vs_plain"] = round(r["tokens_per_s"] / plain["tokens_per_s"], 3)
    z0 = next(r for r in rows if r["setting"] == "zero0")
    mem = ", ".join(f"{r['setting']} {r['peak_rss_gib']} GiB" for r in rows if "peak_rss_gib" in r)
    head = headline("DeepSpeed ZeRO-0 / plain torch optimizer-step throughput", z0.get("speed_vs_plain"),
                    f"fp32, batch {args.batch} x {args.len} tokens, each setting in its own process, mean of {args.steps} steps "
                    "after a warm-up step; "
                    f"peak RSS: {mem}")
    out = write("trainer_step", {"model": args.model, "batch": args.batch, "seq_len": args.len, "rows": rows}, head)
    print(f"wrote {out}")
    print(f"deepspeed zero0 / plain torch step throughput: {z0.get('speed_vs_plain', float('nan')):.3f}")
