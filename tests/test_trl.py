"""Our GRPO against TRL's GRPOTrainer on one fixed batch: the same advantages, loss and gradients.

TRL is an optional benchmark dependency (`pip install -e '.[bench]'`); without it these tests skip.
TRL generates the batch (HF generate on the tiny model) and scores it with a deterministic reward;
both sides then see the same completions, rewards, old and reference log-probs. Prompts have equal
token lengths: TRL derives positions from the padded layout while we derive them from the
attention mask (as vLLM sees unpadded prompts), which agree only without left padding.
"""

from __future__ import annotations

import pytest
import torch

trl = pytest.importorskip("trl")

from rapidbench.algorithms.base import LossInputs  # noqa: E402
from rapidbench.algorithms.grpo import GRPO, GRPOOptions, grpo_advantages  # noqa: E402
from rapidbench.logprobs import token_logprobs  # noqa: E402

PROMPTS = ["What is 2+3?", "What is 4+1?", "What is 6+2?"]
G = 4


GIVEN: list[list[float]] = []


def length_reward(completions, **kwargs):
    """Deterministic and spread out, so groups have mixed rewards; remembers what it gave TRL."""
    GIVEN.append([float(len(c) % 3) / 2 for c in completions])
    return GIVEN[-1]


@pytest.fixture(scope="module")
def trl_batch(tiny_model, tmp_path_factory):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    assert len({len(tok(p)["input_ids"]) for p in PROMPTS}) == 1  # no left padding (see module doc)
    made = {}

    def make(loss_type: str, beta: float):
        torch.manual_seed(0)
        args = trl.GRPOConfig(output_dir=str(tmp_path_factory.mktemp("trl")), per_device_train_batch_size=len(PROMPTS) * G,
                              num_generations=G, max_completion_length=8, use_cpu=True, report_to=[], bf16=False,
                              loss_type=loss_type, beta=beta, temperature=0.7, scale_rewards="group", save_strategy="no",
                              # TRL 1.x defaults to DeepSeek-V3.2's ratio-weighted KL; ours is GRPO's plain k3
                              use_bias_correction_kl=False)
        model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
        trainer = trl.GRPOTrainer(model=model, reward_funcs=[length_reward], args=args, processing_class=tok,
                                  train_dataset=Dataset.from_list([{"prompt": p} for p in PROMPTS]))
        trainer.current_gradient_accumulation_steps = 1  # set by its training_step; we call the loss directly
        batch = trainer._generate_and_score_completions([{"prompt": p} for p in PROMPTS for _ in range(G)])
        return trainer, batch, torch.tensor(GIVEN[-1])

    def get(loss_type: str, beta: float = 0.0):
        if (loss_type, beta) not in made:
            made[loss_type, beta] = make(loss_type, beta)
        return made[loss_type, beta]

    return get


def test_advantages_equal_trl(trl_batch):
    trainer, batch, rewards = trl_batch("grpo")
    group = torch.arange(len(rewards)) // G
    assert len(set(rewards.tolist())) > 1  # a batch with signal
    ours = grpo_advantages(rewards, group, scale=True)  # r - mean_g, / (std_g + 1e-4)
    torch.testing.assert_close(ours, batch["advantages"].float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loss_type,aggregation,beta", [("grpo", "seq-mean", 0.04), ("dapo", "token-sum", 0.0)])
def test_loss_and_gradients_equal_trl(trl_batch, loss_type, aggregation, beta):
    """Off-policy enough to clip (old log-probs shifted), with and without the k3 KL term."""
    trainer, batch, rewards = trl_batch(loss_type, beta)
    model = trainer.model
    model.train()
    P = batch["prompt_ids"].shape[1]
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)  # [n, P+T]
    attn = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)  # [n, P+T]
    mask = batch["completion_mask"].float()  # [n, T]
    with torch.no_grad():
        now = token_logprobs(model, ids, attn, P, 0.7)  # [n, T]
    g = torch.Generator().manual_seed(1)
    old = now + 0.3 * torch.randn(now.shape, generator=g)  # ratios well outside 1 +- 0.2
    ref = now + 0.1 * torch.randn(now.shape, generator=g)
    batch = {**batch, "old_per_token_logps": old, "ref_per_token_logps": ref}

    model.zero_grad()
    trl_loss = trainer._compute_loss(model, batch)
    trl_loss.backward()
    trl_grads = [p.grad.clone() for p in model.parameters()]

    model.zero_grad()
    algo = GRPO(GRPOOptions(group_size=G, prompts_per_step=len(PROMPTS), clip_eps=0.2, kl_coef=beta, aggregation=aggregation))
    logps = token_logprobs(model, ids, attn, P, 0.7)
    norm = float(len(ids)) if aggregation == "seq-mean" else float(mask.sum())
    ours, stats = algo.loss(LossInputs(logps=logps, old_logps=old, mask=mask, advantages=batch["advantages"],
                                       norm=norm, ref_logps=ref if beta else None))
    ours.backward()
    assert 0.05 < stats["clip_frac"] < 0.95  # the clip is exercised on both sides
    torch.testing.assert_close(ours.detach(), trl_loss.detach(), rtol=1e-5, atol=1e-6)
    for a, p in zip(trl_grads, model.parameters()):
        torch.testing.assert_close(p.grad, a, rtol=1e-4, atol=1e-6)
