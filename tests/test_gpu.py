"""CUDA-only paths (skipped on CPU machines; run with `pytest -m gpu` where a GPU is present):
bf16 defaults, vLLM sleep/wake around training, NCCL data parallel."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from rapidbench.algorithms.base import Needs
from rapidbench.samplers.base import pick_dtype

ROOT = Path(__file__).resolve().parent.parent
gpu = pytest.mark.gpu
NGPU = min(2, torch.cuda.device_count())  # the multi-rank tests use 2 GPUs, or the one there is
try:
    import vllm  # noqa: F401

    SAMPLER = "vllm"
except ImportError:  # a GPU image without vLLM still tests the launcher, NCCL and the trainer
    SAMPLER = "hf"


def _deepspeed(n: int) -> list[str]:
    import sys

    return [str(Path(sys.executable).parent / "deepspeed"), "--num_gpus", str(n)]


def test_dtype_auto_follows_the_hardware():
    from rapidbench.samplers.base import cpu_supports_fast_bf16

    assert pick_dtype("float32", "cpu") == torch.float32
    assert pick_dtype("auto", "cpu") == (torch.bfloat16 if cpu_supports_fast_bf16() else torch.float32)


@gpu
def test_cuda_vllm_bf16_sync_sleep_wake(tiny_model, dist):
    pytest.importorskip("vllm")
    from rapidbench.config import SamplerConfig, TrainConfig
    from rapidbench.rollouts import build_rollouts
    from rapidbench.samplers.base import SamplingParams
    from rapidbench.samplers.vllm_sampler import VLLMSampler
    from rapidbench.trainer import DeepSpeedTrainer

    assert pick_dtype("auto", "cuda:0") in (torch.bfloat16, torch.float16)
    trainer = DeepSpeedTrainer(tiny_model, TrainConfig(micro_batch_size=8), mini_batch=8, temperature=0.8,
                               needs=Needs(), total_steps=10)
    sampler = VLLMSampler(tiny_model, SamplerConfig(gpu_memory_utilization=0.2, sleep_between_phases=True), seed=0)
    with torch.no_grad():
        for p in trainer.engine.module.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    sampler.sleep()  # training phase: KV cache and weights released
    with pytest.raises(Exception, match="without a weight sync"):
        sampler.generate([[1, 2, 3]], 1, SamplingParams(max_new_tokens=4, temperature=0.8), seed=0)
    free_asleep = torch.cuda.mem_get_info()[0]
    sampler.update_weights(trainer.named_params())  # wakes the weights, reloads, checks, wakes the KV cache
    assert torch.cuda.mem_get_info()[0] < free_asleep  # the engine holds its memory again
    tok = sampler.tokenizer
    ids = [tok("What is 2 + 3?", add_special_tokens=False)["input_ids"]]
    comps = sampler.generate(ids, 8, SamplingParams(max_new_tokens=16, temperature=0.8), seed=0)
    ro = build_rollouts(ids, comps, [0.0] * len(comps), pad_id=tok.pad_token_id)
    d = (trainer.logprobs(ro) - ro.behaviour_logps).abs() * ro.completion_mask
    mean = float(d.sum() / ro.completion_mask.sum())
    print(f"bf16 max {float(d.max()):.4f} mean {mean:.5f}")
    assert mean < 2e-2  # bf16 kernels differ; the trainer then recomputes pi_old (old_logprobs=auto)
    sampler.close()


@gpu
def test_deepspeed_launcher_nccl(tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([*_deepspeed(NGPU), str(ROOT / "launchers" / "run.py"), "--output", str(out),
                        "--model", "tiny-random", "--max-steps", "2", "--no-progress", "--sampler", SAMPLER,
                        "generation.max_new_tokens=8", "eval.num_problems=4", "algo_args.prompts_per_step=2"],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == NGPU and summary["steps"] == 2


@gpu
def test_each_rank_uses_its_own_gpu_and_collectives_run_on_it(dist):
    """NCCL takes CUDA tensors only: the loop's all-reduces run on the current device, which
    set_device(LOCAL_RANK) chose before the first collective."""
    import os

    from rapidbench.distributed import all_reduce_sum

    assert torch.cuda.current_device() == int(os.environ.get("LOCAL_RANK", 0))
    assert all_reduce_sum([1.0, 2.0]) == [float(torch.distributed.get_world_size()), 2.0 * torch.distributed.get_world_size()]


@gpu
def test_without_output_zero2_checkpointing_time_budget_and_resume(tmp_path):
    """The README's headline shape on 2 GPUs (or the one there is): no --output (rank 0 names it for
    all), ZeRO-2 with gradient checkpointing and a time budget, then a resume with as many ranks."""
    base = [str(ROOT / "launchers" / "run.py"), "--model", "tiny-random", "--no-progress", "--sampler", SAMPLER,
            "--algo", "rapid", "--zero-stage", "2", "train.gradient_checkpointing=true", "generation.max_new_tokens=8",
            "eval.num_problems=4", "eval.every_seconds=5", "algo_args.prompts_per_step=2", "algo_args.steps_per_generation=2"]
    r = subprocess.run([*_deepspeed(NGPU), *base, "--time-budget", "20"], capture_output=True, text=True,
                       timeout=1800, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    (out,) = [p.parent for p in (tmp_path / "runs").glob("*/summary.json")]
    first = json.loads((out / "summary.json").read_text())
    r = subprocess.run([*_deepspeed(NGPU), *base, "--resume", str(out), "--time-budget", "30"],
                       capture_output=True, text=True, timeout=1800, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_wall_s"] >= 30 and summary["steps"] > first["steps"] and summary["world_size"] == NGPU
