"""What a task asks of the embedded model before any training, for several variants of it in one
process: mean completion tokens, the share cut at the token limit, pass rate, and the share of
problems whose group of samples is mixed (rewards not all equal: the only problems a group
baseline learns from). It chooses a task for a regime (the long-completion presets) before a
learnability pilot is paid for. Writes results/bench/<tag>/task_probe-<name>.json.

    python benchmarks/task_probe.py --name long-task \\
        --variant 'sum2 working={"ops": ["+"], "suffix": " Explain your reasoning step by step, then give the final answer."}' \\
        --variant 'sum3 number={"ops": ["+"], "terms": 3}'

Each variant is `label=JSON task_args`; every variant samples the same number of training problems
(the first --problems of its own training split) --samples times, with the suite's vLLM sampler.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def parse_variant(text: str) -> tuple[str, dict]:
    label, sep, body = text.partition("=")
    shape = f"task_probe: --variant {text!r} is not 'label={{JSON task_args}}', e.g. 'sum3={{\"terms\": 3}}'"
    if not label or not sep:
        sys.exit(shape)
    try:
        args = json.loads(body)
    except json.JSONDecodeError as e:
        sys.exit(f"{shape}: the part after '=' is not JSON ({e.msg})")
    if not isinstance(args, dict):
        sys.exit(shape)
    return label, args


def summarise(task, problems, completions, samples: int, limit: int) -> dict:
    """Per variant: lengths, cuts, pass rate, mean reward and mixed groups (grouped by problem)."""
    lengths = [len(c.token_ids) for c in completions]
    grades = [task.grade(problems[c.prompt_index], c.text) for c in completions]
    groups = [[g.reward for g in grades[i * samples:(i + 1) * samples]] for i in range(len(problems))]
    return {
        "mean_tokens": round(statistics.fmean(lengths), 1),
        "median_tokens": statistics.median(lengths),
        "cut_share": round(sum(c.finish_reason == "length" for c in completions) / len(completions), 3),
        "pass": round(statistics.fmean(g.passed for g in grades), 3),
        "reward": round(statistics.fmean(g.reward for g in grades), 3),
        "mixed_share": round(sum(len(set(g)) > 1 for g in groups) / len(groups), 3),  # rewards not all equal
        "limit": limit,
        "examples": [{"prompt": problems[c.prompt_index].prompt, "completion": c.text, "reward": g.reward}
                     for c, g in list(zip(completions, grades))[:: max(1, len(completions) // 3)][:3]],
    }


if __name__ == "__main__":
    from common import headline, write

    from rapidbench.config import SamplerConfig, build
    from rapidbench.distributed import setup_distributed
    from rapidbench.models import resolve_model
    from rapidbench.registry import SAMPLERS, TASKS
    from rapidbench.samplers.base import SamplingParams

    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True, help="names the output: task_probe-<name>.json")
    ap.add_argument("--task", default="arith")
    ap.add_argument("--variant", action="append", required=True, help="label=JSON task_args (repeat)")
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=192)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--model", default="smollm2-135m")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variant]  # every one checked before the model loads
    cls = TASKS.get(args.task)
    tasks = {label: cls(build(cls.Options, task_args, "task_args")) for label, task_args in variants}

    setup_distributed()  # vLLM shares the default process group, as in a run
    sampler = SAMPLERS.get("vllm")(resolve_model(args.model), SamplerConfig(dtype="auto"), seed=0)
    tok = sampler.tokenizer
    params = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature)
    rows = {}
    for label, task_args in variants:
        task = tasks[label]
        problems = task.train_problems()[: args.problems]
        prompts = [tok(task.render_prompt(p, tok), add_special_tokens=False)["input_ids"] for p in problems]
        t0 = time.perf_counter()
        out = sampler.generate(prompts, args.samples, params, seed=0)
        row = {"task_args": task_args, "gen_s": round(time.perf_counter() - t0, 2),
               **summarise(task, problems, out, args.samples, args.max_new_tokens)}
        rows[label] = row
        print(f"{label:28s} tokens {row['mean_tokens']:6.1f} (cut {row['cut_share']:.2f}) | pass {row['pass']:.3f} "
              f"| reward {row['reward']:.3f} | mixed groups {row['mixed_share']:.2f} | {row['gen_s']:.1f} s", flush=True)
    sampler.close()
    best = max(rows, key=lambda k: rows[k]["mixed_share"])
    head = headline(f"task probe {args.name}: the variant with the most mixed groups", best,
                    f"{args.problems} training problems x {args.samples} samples, T={args.temperature}, "
                    f"<= {args.max_new_tokens} new tokens, {args.model}, vLLM; " + "; ".join(
                        f"{k}: {r['mean_tokens']:.0f} tok, pass {r['pass']:.2f}, mixed {r['mixed_share']:.2f}"
                        for k, r in rows.items()))
    body = {"task": args.task, "problems": args.problems, "samples": args.samples,
            "temperature": args.temperature, "variants": rows}
    print(f"wrote {write(f'task_probe-{args.name}', body, head)}")
