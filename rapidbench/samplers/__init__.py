"""Samplers behind one contract (`base.Sampler`). Importing registers `hf`, `vllm` and `auto`."""

from __future__ import annotations

import sys

from rapidbench.registry import register_sampler
from rapidbench.samplers import hf, vllm_sampler  # noqa: F401  (register "hf", "vllm")
from rapidbench.samplers.base import Sampler, SamplingParams  # noqa: F401


@register_sampler("auto")
def auto_sampler(model_path: str, args, seed: int = 0) -> Sampler:
    """vllm when importable, else hf; says which it picked."""
    if vllm_sampler.vllm_available():
        print("[rapidbench] sampler auto -> vllm", file=sys.stderr, flush=True)
        return vllm_sampler.VLLMSampler(model_path, args, seed)
    print("[rapidbench] sampler auto -> hf (vLLM not installed)", file=sys.stderr, flush=True)
    return hf.HFSampler(model_path, args, seed)
