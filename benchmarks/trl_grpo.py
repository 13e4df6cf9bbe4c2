"""Our GRPO vs TRL's GRPOTrainer, the same setting on this CPU: step time ratio (ours / TRL's).

Same model (the embedded SmolLM2-135M-Instruct, fp32), task prompts (arith, chat template applied
once, identically), G = 4, 4 prompts per step, 48 new tokens at T = 0.7, lr 2e-5, seq-mean loss with
group-std scaling, no KL, one optimizer step per generation, no evaluation. A step is everything
between two optimizer steps: generation, grading, log-probs, backward, update, weight sync. TRL
generates with HF `generate` (its vLLM modes need CUDA: a server or a colocated GPU engine); ours
with vLLM on CPU. The first step (warm-up) is dropped; the median of the rest is reported.
tests/test_trl.py checks the two compute the same advantages, loss and gradients.

    python benchmarks/trl_grpo.py [--steps 8]   (needs `pip install -e '.[bench]'`)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

G, PROMPTS, NEW_TOKENS, TEMP, LR = 4, 4, 48, 0.7, 2e-5


def trl_steps(steps: int, out: str) -> list[float]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rapidbench.models import resolve_model
    from rapidbench.registry import TASKS

    path = resolve_model("smollm2-135m")
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    task = TASKS.get("arith")(TASKS.get("arith").Options(), seed=0)
    problems = {task.render_prompt(p, tok): p for p in task.train_problems()}

    def reward(prompts, completions, **kw):
        return [task.grade(problems[p], c).reward for p, c in zip(prompts, completions)]

    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks.append(time.perf_counter())

    args = GRPOConfig(output_dir=out, per_device_train_batch_size=G * PROMPTS, num_generations=G,
                      max_completion_length=NEW_TOKENS, temperature=TEMP, learning_rate=LR, lr_scheduler_type="constant",
                      max_steps=steps, loss_type="grpo", scale_rewards="group", beta=0.0, use_vllm=False,
                      use_cpu=True, bf16=False, report_to=[], save_strategy="no", logging_steps=1, seed=0,
                      gradient_accumulation_steps=1, top_k=0, top_p=1.0)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, processing_class=tok,
                          train_dataset=Dataset.from_list([{"prompt": t} for t in problems]), callbacks=[Clock()])
    marks.append(time.perf_counter())
    trainer.train()
    return [b - a for a, b in zip(marks, marks[1:])]


def our_steps(steps: int, out: str) -> list[float]:
    run = [sys.executable, "-m", "rapidbench", "run", "--preset", "grpo-cpu", "--max-steps", str(steps), "--output", out,
           "--no-progress", "eval.at_start=false", "eval.every_steps=0", "train.lr_schedule=constant",
           f"generation.max_new_tokens={NEW_TOKENS}", f"generation.temperature={TEMP}", f"train.lr={LR}",
           f"algo_args.group_size={G}", f"algo_args.prompts_per_step={PROMPTS}",
           # fp32 like TRL's side, also where `auto` would pick bf16 (AVX512-BF16/AMX)
           "train.dtype=float32", "sampler_args.dtype=float32"]
    subprocess.run(run, check=True, stdout=subprocess.DEVNULL)
    walls = [json.loads(ln)["wall_s"] for ln in Path(out, "metrics.jsonl").read_text().splitlines()]
    return [b - a for a, b in zip([0.0, *walls], walls)]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--only", choices=["trl", "ours"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:  # one side, in its own process: no shared threads, caches or memory
        fn = trl_steps if args.only == "trl" else our_steps
        print("RESULT " + json.dumps(fn(args.steps, args.out)), flush=True)
        sys.exit(0)
    from common import headline, write

    sides = {}
    with tempfile.TemporaryDirectory() as tmp:
        for side in ("ours", "trl"):
            r = subprocess.run([sys.executable, __file__, "--only", side, "--steps", str(args.steps),
                                "--out", str(Path(tmp) / side)], capture_output=True, text=True)
            line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
            if r.returncode or not line:
                sys.exit(f"{side} failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
            times = json.loads(line[0][7:])
            sides[side] = {"step_s": [round(t, 3) for t in times], "median_step_s": round(statistics.median(times[1:]), 3)}
            print(side, sides[side], flush=True)
    ratio = sides["ours"]["median_step_s"] / sides["trl"]["median_step_s"]
    head = headline("our GRPO step time / TRL GRPOTrainer's", round(ratio, 3),
                    f"SmolLM2-135M fp32, arith, G={G}, {PROMPTS} prompts/step, {NEW_TOKENS} tokens, {args.steps} steps "
                    "each in its own process, median after the first; TRL generates with HF generate, ours with vLLM",
                    target="<= 0.8", met=ratio <= 0.8)
    print(f"wrote {write('trl_grpo', {'setting': {'G': G, 'prompts': PROMPTS, 'new_tokens': NEW_TOKENS, 'lr': LR}, **sides}, head)}")
    print(f"our GRPO step time / TRL's: {ratio:.3f}")
