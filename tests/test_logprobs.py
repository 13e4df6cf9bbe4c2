"""Log-probs from the head on real tokens only, chunked with recomputation, equal the plain
full-vocabulary computation in value and in gradient (tiny model, fp32)."""

from __future__ import annotations

import pytest
import torch

import rapidbench.logprobs as lp
from test_trainer import toy_rollouts


def reference(model, ro, temperature):
    """The obvious computation: every position's full logits, fp32 log-softmax, masked."""
    pos = (ro.attention_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=ro.input_ids, attention_mask=ro.attention_mask, position_ids=pos).logits  # [n, P+T, V]
    logits = logits[:, ro.prompt_len - 1 : -1].float() / temperature  # [n, T, V]
    picked = torch.log_softmax(logits, -1).gather(-1, ro.completion_ids.unsqueeze(-1)).squeeze(-1)
    return picked * ro.completion_mask


@pytest.fixture(scope="module")
def model(tiny_model):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)


@pytest.mark.parametrize("path", ["chunked", "one-chunk", "model-head"])
def test_values_and_gradients_equal_the_full_computation(model, monkeypatch, path):
    ro = toy_rollouts(G=2, P=4)
    if path == "chunked":
        monkeypatch.setattr(lp, "CHUNK_BYTES", 4 * model.config.vocab_size * 3)  # 3 rows per chunk
    if path == "model-head":
        monkeypatch.setattr(lp, "_plain_head", lambda net: False)
    weights = torch.randn(ro.completion_mask.shape, generator=torch.Generator().manual_seed(1))

    def run(fn):
        model.zero_grad()
        out = fn()
        (out * weights).sum().backward()
        return out.detach(), torch.cat([p.grad.flatten() for p in model.parameters()])

    ours, g_ours = run(lambda: lp.token_logprobs(model, ro.input_ids, ro.attention_mask, ro.prompt_len, 0.7,
                                                 ro.completion_mask))
    ref, g_ref = run(lambda: reference(model, ro, 0.7))
    assert torch.equal(ours == 0, ro.completion_mask == 0)  # padding is exactly 0, real tokens are not
    assert torch.allclose(ours, ref, atol=1e-5)
    assert ((g_ours - g_ref).norm() / g_ref.norm()).item() < 1e-5
