"""Per-token log-probabilities and values of completions, computed only where they are needed.

A row is a left-padded prompt of width P and a right-padded completion of width T. The
vocabulary projection and the fp32 log-softmax are the costly part of the head (V = 49k for the
embedded model, 152k for Qwen): they run only on the real completion tokens (`mask`), never on
padding, and in chunks of rows whose fp32 logits are recomputed in backward instead of stored,
so their memory stays bounded at any completion length (the paper's 2,048 tokens). Under ZeRO-3
the model's own forward computes them (its hooks gather parameters for whole-model calls only).
"""

from __future__ import annotations

import torch

CHUNK_BYTES = 1 << 28  # fp32 logits held at once: 256 MiB


def _positions(attn: torch.Tensor) -> torch.Tensor:
    """Position ids that follow the attention mask, so left padding does not shift positions."""
    return (attn.cumsum(-1) - 1).clamp(min=0)


class LinearLogProb(torch.autograd.Function):
    """log softmax(h W^T / temperature)[target] per row, in chunks of rows.

    h: [R, d] (model dtype), weight: [V, d], targets: [R] -> [R] fp32. With one chunk the fp32
    logits are kept for backward (fastest); with several they are recomputed chunk by chunk in
    backward, so memory stays at one chunk whatever R is."""

    @staticmethod
    def forward(ctx, h, weight, targets, temperature: float, chunk: int):
        hs = h / temperature  # [R, d]: the temperature folded into the small operand
        out = torch.empty(h.shape[0], dtype=torch.float32, device=h.device)  # [R]
        lse = torch.empty_like(out)  # [R]
        for s in range(0, h.shape[0], chunk):
            logits = (hs[s : s + chunk] @ weight.t()).float()  # [c, V]
            lse[s : s + chunk] = torch.logsumexp(logits, -1)
            out[s : s + chunk] = logits.gather(-1, targets[s : s + chunk, None]).squeeze(-1) - lse[s : s + chunk]
        kept = logits if h.shape[0] <= chunk else None
        ctx.save_for_backward(hs, weight, targets, lse, kept)
        ctx.temperature, ctx.chunk = temperature, chunk
        return out

    @staticmethod
    def backward(ctx, grad):  # grad: [R] fp32
        hs, weight, targets, lse, kept = ctx.saved_tensors
        dhs = torch.empty_like(hs)
        dw = None
        for s in range(0, hs.shape[0], ctx.chunk):
            hc, g = hs[s : s + ctx.chunk], grad[s : s + ctx.chunk, None]  # [c, d], [c, 1]
            logits = kept if kept is not None else (hc @ weight.t()).float()  # [c, V]
            d = logits.sub(lse[s : s + ctx.chunk, None]).exp_().mul_(-g)  # -g * softmax
            d = d.scatter_add_(-1, targets[s : s + ctx.chunk, None], g).to(hs.dtype)  # g * (onehot - softmax)
            dhs[s : s + ctx.chunk] = d @ weight
            part = d.t() @ hc  # [V, d]
            dw = part if dw is None else dw.float() + part  # several chunks: accumulate in fp32
        return dhs / ctx.temperature, dw.to(weight.dtype), None, None, None


def _unwrap(model):
    """The HF model under a DeepSpeed engine (or the model itself)."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, torch.nn.Module) else model


def _plain_head(net) -> bool:
    """Is the model's output a bias-free linear projection of its decoder's last state (Llama, Qwen,
    SmolLM, ...)? Models that scale or soft-cap their logits go through their own forward, and so
    do ZeRO-3 models: their parameters are gathered by hooks that expect the whole model's call."""
    head, cfg = net.get_output_embeddings(), getattr(net, "config", None)
    if hasattr(head.weight, "ds_id"):
        return False
    special = any(getattr(cfg, k, None) not in (None, 1.0) for k in ("final_logit_softcapping", "logit_scale",
                                                                        "logits_scaling", "output_multiplier_scale"))
    return (isinstance(head, torch.nn.Linear) and head.bias is None and hasattr(net, "get_decoder")
            and not special)


def token_logprobs(model, ids: torch.Tensor, attn: torch.Tensor, prompt_len: int, temperature: float,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """log pi(y_t | prefix) of every completion token under `model` at `temperature`.

    ids, attn: [n, P+T]; mask: [n, T] real completion tokens (default: all). -> [n, T], 0 off the mask.
    The decoder runs over every position; the head only over the masked ones.
    """
    net = _unwrap(model)
    T = ids.shape[1] - prompt_len
    targets = ids[:, prompt_len:]  # [n, T]
    mask = torch.ones_like(targets, dtype=torch.bool) if mask is None else mask.to(ids.device).bool()
    t = 1.0 if temperature <= 0 else temperature
    if not _plain_head(net):  # the model's own head, on the last T + 1 positions
        logits = model(input_ids=ids, attention_mask=attn, position_ids=_positions(attn), use_cache=False,
                       logits_to_keep=T + 1).logits[:, :-1].float() / t  # [n, T, V]
        picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)  # [n, T]
        return picked * mask
    hidden = net.get_decoder()(input_ids=ids, attention_mask=attn, position_ids=_positions(attn),
                               use_cache=False).last_hidden_state  # [n, P+T, d]
    h = hidden[:, prompt_len - 1 : prompt_len - 1 + T][mask]  # [R, d] states that predict the real tokens
    weight = net.get_output_embeddings().weight  # [V, d]
    chunk = max(1, CHUNK_BYTES // (4 * weight.shape[0]))
    picked = LinearLogProb.apply(h, weight, targets[mask], t, chunk)  # [R]
    out = torch.zeros(mask.shape, dtype=torch.float32, device=ids.device)  # [n, T]
    return out.masked_scatter(mask, picked)


def token_values(critic, ids: torch.Tensor, attn: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """Critic value of the state before each completion token. ids, attn: [n, P+T] -> [n, T]."""
    out = critic(input_ids=ids, attention_mask=attn, position_ids=_positions(attn)).logits  # [n, P+T, 1]
    return out[:, prompt_len - 1 : -1, 0].float()  # [n, T]
