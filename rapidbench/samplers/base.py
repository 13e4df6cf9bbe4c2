"""The sampler contract. Trainer and algorithms see only this; samplers know nothing of algorithms.

Log-prob convention (both backends): the behaviour log-prob of a sampled token is taken from the
distribution actually sampled, i.e. log_softmax(logits / temperature). top_p / top_k default to
off for training so that this equals what the trainer recomputes; with them on, the backends
report the truncated, renormalised distribution (vLLM `processed_logprobs`), which the trainer
does not reproduce: the staleness canary will then show the gap. Greedy (T = 0) reports
log_softmax(logits).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import torch

from rapidbench.rollouts import Completion


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 48
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = -1
    ignore_eos: bool = False  # benchmarks: every completion runs to max_new_tokens


def cpu_supports_fast_bf16() -> bool:
    """bf16 matmuls are only fast on CPUs with AVX512-BF16 or AMX; on AVX2 they are slower than fp32."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_dtype(requested: str, device: str) -> torch.dtype:
    """`auto`: bf16 where the hardware does bf16 fast (CUDA with bf16, AVX512-BF16/AMX CPUs), else fp32."""
    if requested != "auto":
        return getattr(torch, requested)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_supports_fast_bf16() else torch.float32


def default_device() -> str:
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu"


class Sampler:
    """Generate grouped completions and take new weights from the trainer."""

    tokenizer: object

    def generate(
        self, prompt_ids: list[list[int]], n: int, params: SamplingParams, seed: int
    ) -> list[Completion]:
        """n completions per prompt, prompt-major: result[i*n + j] answers prompt i."""
        raise NotImplementedError

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load new weights, streamed as (HF parameter name, tensor) pairs."""
        raise NotImplementedError

    def sleep(self) -> None:
        """Release generation memory while the trainer runs (no-op where it buys nothing)."""

    def wake(self) -> None:
        """Undo sleep() before the next generate()."""

    def close(self) -> None:
        """Free the engine."""

    @property
    def name(self) -> str:
        return type(self).__name__
