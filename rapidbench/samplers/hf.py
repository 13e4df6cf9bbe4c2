"""`hf`: batched transformers `generate` on its own copy of the model."""

from __future__ import annotations

from typing import Iterable

import torch

from rapidbench.registry import register_sampler
from rapidbench.rollouts import Completion
from rapidbench.samplers.base import Sampler, SamplingParams, default_device, pick_dtype


@register_sampler("hf")
class HFSampler(Sampler):
    """Batched transformers generate(); exact processed log-probs; works everywhere transformers does."""

    def __init__(self, model_path: str, args, seed: int = 0, max_batch: int = 64):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = default_device()
        self.dtype = pick_dtype(args.dtype, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=self.dtype).to(self.device).eval()
        self.max_batch = max_batch
        self.eos_ids = _eos_ids(self.model, self.tokenizer)

    @torch.no_grad()
    def generate(self, prompt_ids: list[list[int]], n: int, params: SamplingParams, seed: int) -> list[Completion]:
        rows = [(i, ids) for i, ids in enumerate(prompt_ids) for _ in range(n)]  # prompt-major
        out: list[Completion] = []
        # fork_rng: sampling must not move the trainer's global RNG, and `seed` alone fixes the result.
        devices = [torch.device(self.device)] if self.device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for start in range(0, len(rows), self.max_batch):
                out.extend(self._generate_batch(rows[start : start + self.max_batch], params))
        return out

    def _generate_batch(self, rows: list[tuple[int, list[int]]], params: SamplingParams) -> list[Completion]:
        pad = self.tokenizer.pad_token_id
        width = max(len(ids) for _, ids in rows)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attn = torch.zeros_like(input_ids)
        for r, (_, ids) in enumerate(rows):
            input_ids[r, width - len(ids) :] = torch.tensor(ids)
            attn[r, width - len(ids) :] = 1
        greedy = params.temperature <= 0
        kwargs = dict(do_sample=False) if greedy else dict(
            do_sample=True,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k if params.top_k > 0 else 0,
        )
        res = self.model.generate(
            input_ids=input_ids.to(self.device),
            attention_mask=attn.to(self.device),
            max_new_tokens=params.max_new_tokens,
            min_new_tokens=params.max_new_tokens if params.ignore_eos else 0,
            pad_token_id=pad,
            eos_token_id=self.eos_ids,
            output_scores=True,  # processed scores: after temperature / top-p, as sampled
            return_dict_in_generate=True,
            **kwargs,
        )
        gen = res.sequences[:, width:]  # [B, T]
        # scores: T tensors [B, V] of processed logits; log_softmax gives the sampled distribution.
        scores = torch.stack(res.scores, 1).float()  # [B, T, V]
        logps = torch.log_softmax(scores, -1).gather(-1, gen.unsqueeze(-1)).squeeze(-1)  # [B, T]
        out = []
        for r, (pi, _) in enumerate(rows):
            toks = gen[r].tolist()
            n_real = len(toks)
            finish = "length"
            for t, tok in enumerate(toks):
                if tok in self.eos_ids and not params.ignore_eos:
                    n_real, finish = t + 1, "stop"  # the EOS token was sampled: it counts
                    break
            toks = toks[:n_real]
            out.append(Completion(
                prompt_index=pi,
                token_ids=toks,
                text=self.tokenizer.decode(toks, skip_special_tokens=True),
                logprobs=logps[r, :n_real].tolist(),
                finish_reason=finish,
            ))
        return out

    @torch.no_grad()
    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        params = dict(self.model.named_parameters())
        for name, tensor in named_tensors:
            if name in params:
                params[name].data.copy_(tensor.to(params[name].dtype))
        # Tied embeddings share one Parameter, so lm_head follows embed_tokens automatically.


def _eos_ids(model, tokenizer) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = ids if isinstance(ids, list) else [ids] if ids is not None else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
