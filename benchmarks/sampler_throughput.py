"""Sampler throughput: tokens/s of `vllm` vs `hf` on the embedded model at batch 1, 16 and 64
(same prompts, every completion exactly --tokens long), and weight-sync seconds. One process, side
by side. Writes results/bench/<tag>/sampler_throughput.json; the last line printed is the ratio.

    python benchmarks/sampler_throughput.py [--tokens 32] [--batches 1 16 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

if __name__ == "__main__":
    from common import headline, write

    from rapidbench.config import SamplerConfig
    from rapidbench.models import resolve_model
    from rapidbench.registry import SAMPLERS, TASKS
    from rapidbench.samplers.base import SamplingParams
    from rapidbench.distributed import setup_distributed

    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    setup_distributed()  # vLLM shares the default process group, as in a run
    path = resolve_model(args.model)
    task_cls = TASKS.get("arith")
    task = task_cls(task_cls.Options())
    params = SamplingParams(max_new_tokens=args.tokens, temperature=0.7, ignore_eos=True)
    results: dict = {"tokens_per_completion": args.tokens, "model": args.model, "backends": {}}
    from transformers import AutoModelForCausalLM

    source = AutoModelForCausalLM.from_pretrained(path)  # plays the trainer for the sync timing
    for name in ("hf", "vllm"):
        sampler = SAMPLERS.get(name)(path, SamplerConfig(dtype="auto"), seed=0)
        tok = sampler.tokenizer
        prompts = [tok(task.render_prompt(p, tok), add_special_tokens=False)["input_ids"] for p in task.test_problems()]
        sampler.generate(prompts[:4], 1, params, seed=0)  # warm-up
        row = {"dtype": str(getattr(sampler, "dtype", "")), "tok_per_s": {}}
        for b in args.batches:
            speeds = []
            for r in range(args.repeats):
                t0 = time.perf_counter()
                out = sampler.generate(prompts[:b], 1, params, seed=r)
                dt = time.perf_counter() - t0
                speeds.append(sum(len(c.token_ids) for c in out) / dt)
            row["tok_per_s"][str(b)] = round(statistics.median(speeds), 1)
            print(f"{name:5s} batch {b:3d}: {row['tok_per_s'][str(b)]:8.1f} tok/s", flush=True)
        syncs = []
        for _ in range(3):
            t0 = time.perf_counter()
            sampler.update_weights(source.named_parameters())
            syncs.append(time.perf_counter() - t0)
        row["sync_s"] = round(statistics.median(syncs), 3)
        big = str(max(args.batches))
        row["gen_s_at_max_batch"] = round(int(big) * args.tokens / row["tok_per_s"][big], 2)
        row["sync_share_of_generation"] = round(row["sync_s"] / (row["sync_s"] + row["gen_s_at_max_batch"]), 4)
        print(f"{name:5s} weight sync: {row['sync_s']:.3f} s", flush=True)
        results["backends"][name] = row
        if name == "hf":
            sampler.close()
    big = str(max(args.batches))
    ratio = results["backends"]["vllm"]["tok_per_s"][big] / results["backends"]["hf"]["tok_per_s"][big]
    results["vllm_over_hf_at_max_batch"] = round(ratio, 3)
    results["targets"] = {"vllm_over_hf_at_64": ">= 3", "sync_s_135m": "<= 1", "sync_share_of_step": "<= 0.05"}
    sync = results["backends"]["vllm"]["sync_s"]
    tps = {name: "/".join(str(round(v)) for v in row["tok_per_s"].values()) for name, row in results["backends"].items()}
    head = headline(f"vllm / hf generation tokens/s at batch {big}", round(ratio, 2),
                    f"same prompts, {args.tokens} tokens each, one process, median of repeats, "
                    f"{results['backends']['vllm']['dtype'].replace('torch.', '')}; tokens/s at batch "
                    f"{'/'.join(results['backends']['vllm']['tok_per_s'])}: vllm {tps['vllm']}, hf {tps['hf']}; "
                    f"vllm weight sync {sync} s", target=">= 3", met=ratio >= 3)
    print(f"wrote {write('sampler_throughput', results, head)}")
    print(f"vllm/hf tokens/s at batch {big}: {ratio:.2f}")
