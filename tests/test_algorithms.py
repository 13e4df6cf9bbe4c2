"""Losses against hand-computed values on a toy of 2 prompts x 2 completions, plus invariances.

The expected numbers are written out as scalar arithmetic here, not obtained by re-running the code.
"""

from __future__ import annotations

import math

import pytest
import torch

from rapidbench.algorithms.base import LossInputs, split_groups
from rapidbench.algorithms.grpo import GRPO, GRPOOptions, grpo_advantages
from rapidbench.algorithms.rapid import RAPID, RAPIDOptions, importance_weights, rapid_advantages
from rapidbench.rollouts import Rollouts

EPS = 0.2
GROUP = torch.tensor([0, 0, 1, 1])
REWARDS = torch.tensor([1.0, 0.0, 1.0, 1.0])
MASK = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])  # completion 3 has one real token
OLD = torch.tensor([[-1.0, -2.0], [-0.5, -1.5], [-2.0, -1.0], [-0.7, -3.0]])
D = torch.tensor([[0.1, -0.3], [0.3, 0.0], [0.5, 0.6], [-0.2, 5.0]])  # log pi_theta - log pi_old; 5.0 is padding
NEW = OLD + D


def ppo_tok(rho: float, adv: float, eps: float = EPS) -> float:
    """-min(rho A, clip(rho, 1-eps, 1+eps) A) for one token."""
    return -min(rho * adv, min(max(rho, 1 - eps), 1 + eps) * adv)


def rollouts_for(adv=None) -> Rollouts:
    N, T = MASK.shape
    return Rollouts(
        input_ids=torch.zeros(N, 3 + T, dtype=torch.long), attention_mask=torch.ones(N, 3 + T, dtype=torch.long),
        completion_mask=MASK.clone(), behaviour_logps=OLD.clone(), group=GROUP.clone(), rewards=REWARDS.clone(),
        prompt_len=3, finished=torch.ones(N, dtype=torch.bool), old_logps=OLD.clone(), advantages=adv,
    )


def loss_of(algo, adv, new=NEW, old=OLD, mask=MASK, norm=None):
    ro = rollouts_for(adv)
    ro.completion_mask = mask
    inp = LossInputs(logps=new, old_logps=old, mask=mask, advantages=adv, norm=norm or algo.normaliser(ro))
    return algo.loss(inp)[0].item()


def test_grpo_loss_by_hand_seq_mean_and_token_sum():
    # advantages without std: group 0 mean 0.5 -> [0.5, -0.5]; group 1 mean 1 -> [0, 0]
    adv = grpo_advantages(REWARDS, GROUP, scale=False)
    assert adv.tolist() == [0.5, -0.5, 0.0, 0.0]
    t00, t01 = ppo_tok(math.exp(0.1), 0.5), ppo_tok(math.exp(-0.3), 0.5)  # -0.552585, -0.370409 (unclipped)
    t10, t11 = ppo_tok(math.exp(0.3), -0.5), ppo_tok(1.0, -0.5)  # 0.674929 (unclipped wins), 0.5
    assert t01 == pytest.approx(-0.370409, abs=1e-6) and t10 == pytest.approx(0.674929, abs=1e-6)
    seq_mean = ((t00 + t01) / 2 + (t10 + t11) / 2 + 0 + 0) / 4
    token_sum = (t00 + t01 + t10 + t11) / 7  # 7 real tokens
    g = GRPO(GRPOOptions(scale_rewards=False, aggregation="seq-mean"))
    assert loss_of(g, adv) == pytest.approx(seq_mean, abs=1e-6)
    assert seq_mean == pytest.approx(0.031492, abs=1e-6)
    g2 = GRPO(GRPOOptions(scale_rewards=False, aggregation="token-sum"))
    assert loss_of(g2, adv) == pytest.approx(token_sum, abs=1e-6)


def test_grpo_std_scaling_by_hand():
    adv = grpo_advantages(REWARDS, GROUP, scale=True, eps=1e-4)
    std0 = math.sqrt(((1 - 0.5) ** 2 + (0 - 0.5) ** 2) / (2 - 1))  # unbiased: 0.7071
    assert adv.tolist() == pytest.approx([0.5 / (std0 + 1e-4), -0.5 / (std0 + 1e-4), 0.0, 0.0], abs=1e-6)


def test_rapid_weights_and_advantages_by_hand():
    eta = 2.0
    w = importance_weights(NEW, OLD, MASK, eta)
    # sums over real tokens only: -0.2, 0.3, 1.1 (capped at eta), -0.2 (the 5.0 on padding is ignored)
    expect_w = [math.exp(-0.2), math.exp(0.3), eta, math.exp(-0.2)]
    assert w.tolist() == pytest.approx(expect_w, abs=1e-6)
    adv = rapid_advantages(REWARDS, w, GROUP, scale=False)
    b0 = (expect_w[0] * 1 + expect_w[1] * 0) / 2  # 0.409365
    b1 = (expect_w[2] * 1 + expect_w[3] * 1) / 2  # 1.409365
    assert adv.tolist() == pytest.approx([1 - b0, 0 - b0, 1 - b1, 1 - b1], abs=1e-6)


def test_rapid_loss_by_hand():
    eta = 2.0
    w = [math.exp(-0.2), math.exp(0.3), eta, math.exp(-0.2)]
    b0, b1 = (w[0] + 0) / 2, (w[2] + w[3]) / 2
    A = [1 - b0, -b0, 1 - b1, 1 - b1]
    toks = [
        [ppo_tok(math.exp(0.1), A[0]), ppo_tok(math.exp(-0.3), A[0])],
        [ppo_tok(math.exp(0.3), A[1]), ppo_tok(1.0, A[1])],
        [ppo_tok(math.exp(0.5), A[2]), ppo_tok(math.exp(0.6), A[2])],
        [ppo_tok(math.exp(-0.2), A[3])],  # the padded token is not counted
    ]
    seq_mean = sum(sum(t) / len(t) for t in toks) / 4
    token_sum = sum(sum(t) for t in toks) / 7
    for agg, want in (("seq-mean", seq_mean), ("token-sum", token_sum)):
        r = RAPID(RAPIDOptions(eta=eta, clip_eps=EPS, aggregation=agg))
        ro = rollouts_for()
        r.step_advantages(ro, NEW)
        assert ro.advantages.tolist() == pytest.approx(A, abs=1e-6)
        # logged: mean weight, share at the cap (1 of 4), below 1/2 (none), mean baseline mass
        assert ro.extras == pytest.approx({"iw_mean": sum(w) / 4, "iw_capped": 0.25, "iw_low": 0.0,
                                           "iw_mass": ((w[0] + w[1]) / 2 + (w[2] + w[3]) / 2) / 2}, abs=1e-6)
        assert loss_of(r, ro.advantages) == pytest.approx(want, abs=1e-6)


def test_rapid_a1_fresh_equals_grpo_without_std():
    torch.manual_seed(0)
    N, T = 8, 5
    group = torch.arange(4).repeat_interleave(2)
    rewards = torch.randint(0, 2, (N,)).float()
    old = -torch.rand(N, T) * 3
    mask = (torch.rand(N, T) > 0.2).float()
    mask[:, 0] = 1
    ro = rollouts_for()
    ro.group, ro.rewards, ro.completion_mask, ro.old_logps = group, rewards, mask, old
    r = RAPID(RAPIDOptions(steps_per_generation=1))
    r.step_advantages(ro, old)  # theta == pi_old: every w is exactly 1
    g = GRPO(GRPOOptions(scale_rewards=False))
    assert torch.equal(ro.advantages, grpo_advantages(rewards, group, scale=False))
    new_r = old.clone().requires_grad_(True)
    new_g = old.clone().requires_grad_(True)
    lr = r.loss(LossInputs(new_r, old, mask, ro.advantages, norm=float(N)))[0]
    lg = g.loss(LossInputs(new_g, old, mask, grpo_advantages(rewards, group, scale=False), norm=float(N)))[0]
    lr.backward()
    lg.backward()
    assert lr.item() == lg.item()
    assert torch.equal(new_r.grad, new_g.grad)


@pytest.mark.parametrize("agg", ["seq-mean", "token-sum"])
@pytest.mark.parametrize("make", [lambda a: GRPO(GRPOOptions(aggregation=a)), lambda a: RAPID(RAPIDOptions(aggregation=a))])
def test_padding_does_not_change_loss(make, agg):
    algo = make(agg)
    ro = rollouts_for()
    algo.advantages(ro)
    algo.step_advantages(ro, NEW)
    adv = ro.advantages
    base = loss_of(algo, adv)
    # three more padding columns holding garbage log-probs
    pad = torch.full((4, 3), 7.0)
    new = torch.cat([NEW, pad], 1)
    old = torch.cat([OLD, -pad], 1)
    mask = torch.cat([MASK, torch.zeros(4, 3)], 1)
    ro2 = rollouts_for()
    ro2.completion_mask, ro2.old_logps = mask, old
    algo.step_advantages(ro2, new)
    adv2 = ro2.advantages if ro2.advantages is not None else adv
    assert loss_of(algo, adv2, new=new, old=old, mask=mask) == pytest.approx(base, abs=1e-7)


def test_split_groups_keeps_groups_whole_and_same_prompt():
    G, P, A = 4, 8, 4
    group = torch.arange(P).repeat_interleave(G)[torch.randperm(P * G, generator=torch.Generator().manual_seed(1))]
    chunks = split_groups(group, A, torch.Generator().manual_seed(0))
    assert len(chunks) == A
    seen = torch.cat(chunks)
    assert sorted(seen.tolist()) == list(range(P * G))  # every row once
    for c in chunks:
        ids = group[c]
        assert len(c) == (P // A) * G
        for g in ids.unique():
            assert int((ids == g).sum()) == G  # whole group, and only same-prompt rows share its baseline
    # different seeds give different orders, same property
    other = split_groups(group, A, torch.Generator().manual_seed(1))
    assert [c.tolist() for c in other] != [c.tolist() for c in chunks]
    with pytest.raises(ValueError, match="cannot be split"):
        split_groups(group, 3, torch.Generator())


# ---- PG, DAPO, PPO --------------------------------------------------------------------------------
from rapidbench.algorithms.dapo import DAPO, DAPOOptions, informative_groups, overlong_penalty  # noqa: E402
from rapidbench.algorithms.pg import PG, PGOptions  # noqa: E402
from rapidbench.algorithms.ppo import PPO, PPOOptions, clipped_value_loss, gae, token_rewards  # noqa: E402


def clip_tok(rho: float, adv: float, lo: float, hi: float) -> float:
    return -min(rho * adv, min(max(rho, 1 - lo), 1 + hi) * adv)


def test_pg_loss_by_hand():
    adv = torch.tensor([0.5, -0.5, 0.0, 0.0])
    toks = [[-0.5 * math.exp(0.1), -0.5 * math.exp(-0.3)], [0.5 * math.exp(0.3), 0.5 * 1.0], [0.0, 0.0], [0.0]]
    want = sum(sum(t) / len(t) for t in toks) / 4
    assert loss_of(PG(PGOptions()), adv) == pytest.approx(want, abs=1e-6)


def test_dapo_clip_higher_token_level_by_hand():
    d = torch.tensor([[0.24, -0.3], [0.3, 0.0], [0.5, 0.6], [-0.2, 5.0]])  # 0.24: rho 1.271, inside 1+0.28
    algo = DAPO(DAPOOptions())
    ro = rollouts_for()
    algo.advantages(ro)
    a = 0.5 / (math.sqrt(0.5) + 1e-4)  # group 0: (r - mean) / (unbiased std + eps); group 1 all equal: 0
    assert ro.advantages.tolist() == pytest.approx([a, -a, 0.0, 0.0], abs=1e-6)
    toks = [clip_tok(math.exp(0.24), a, 0.2, 0.28), clip_tok(math.exp(-0.3), a, 0.2, 0.28),
            clip_tok(math.exp(0.3), -a, 0.2, 0.28), clip_tok(1.0, -a, 0.2, 0.28)]
    assert toks[0] == pytest.approx(-math.exp(0.24) * a)  # clip-higher: not clipped at 1.2 any more
    want = sum(toks) / 7  # token-level: all real tokens of the mini-batch
    assert loss_of(algo, ro.advantages, new=OLD + d) == pytest.approx(want, abs=1e-6)


def test_dapo_overlong_and_dynamic_sampling():
    lengths = torch.tensor([30, 36, 42, 48, 50])
    # L_max 48, L_cache 12: no penalty up to 36, linear to -1 at 48, -1 past it
    assert overlong_penalty(lengths, 48, 12).tolist() == pytest.approx([0.0, 0.0, -0.5, -1.0, -1.0])
    assert informative_groups(REWARDS, GROUP).tolist() == [True, True, False, False]
    algo = DAPO(DAPOOptions())
    assert algo.keep(rollouts_for()).tolist() == [True, True, False, False] and algo.max_refill == 3
    assert DAPO(DAPOOptions(dynamic_sampling=False)).max_refill == 0


def test_gae_by_hand():
    r = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    v = torch.tensor([[0.5, 0.6, 0.7, 9.0]])  # 9.0 sits on padding and must not leak in
    m = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    g, lam = 0.9, 0.8
    d2 = 1.0 + g * 0.0 - 0.7
    d1 = 0.0 + g * 0.7 - 0.6
    d0 = 0.0 + g * 0.6 - 0.5
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    adv, ret = gae(r, v, m, g, lam)
    assert adv.tolist()[0] == pytest.approx([a0, a1, a2, 0.0], abs=1e-6)
    assert ret.tolist()[0] == pytest.approx([a0 + 0.5, a1 + 0.6, a2 + 0.7, 0.0], abs=1e-6)


def test_ppo_token_rewards_value_loss_and_policy_loss_by_hand():
    tr = token_rewards(torch.tensor([1.0, 0.0]), torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
                       kl=torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]), kl_coef=0.5)
    assert tr.flatten().tolist() == pytest.approx([-0.05, 1.0 - 0.1, 0.0, -0.2, 0.0, 0.0])
    # V 1.0, V_old 0.5, R 0.8: unclipped (0.2)^2, clipped V 0.7 -> (0.1)^2; max -> 0.04; half -> 0.02
    vl = clipped_value_loss(torch.tensor([[1.0]]), torch.tensor([[0.5]]), torch.tensor([[0.8]]), 0.2)
    assert vl.item() == pytest.approx(0.02)
    algo = PPO(PPOOptions())
    adv = torch.tensor([[0.3, -0.2], [1.0, 0.5], [0.0, 0.0], [-1.0, 7.0]])  # per token; 7.0 on padding
    rho = D.exp().tolist()
    toks = [clip_tok(rho[0][0], 0.3, .2, .2), clip_tok(rho[0][1], -0.2, .2, .2), clip_tok(rho[1][0], 1.0, .2, .2),
            clip_tok(rho[1][1], 0.5, .2, .2), 0.0, 0.0, clip_tok(rho[3][0], -1.0, .2, .2)]
    assert loss_of(algo, adv) == pytest.approx(sum(toks) / 7, abs=1e-6)
    assert algo.needs.critic and not algo.needs.reference_model


def test_batched_grpo_is_rapids_schedule_without_importance_weights():
    """steps_per_generation = A: one generation of A x B prompts, A disjoint mini-batches of whole
    groups; advantages are the plain group baseline (no weights), as many times as num_iterations."""
    from rapidbench.algorithms.grpo import GRPO, GRPOOptions

    algo = GRPO(GRPOOptions(group_size=2, prompts_per_step=2, steps_per_generation=2, num_iterations=2))
    assert algo.prompts_per_generation == 4 and algo.steps_per_generation == 4
    group = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    ro = type("R", (), {"group": group, "size": 8})()
    batches = algo.minibatches(ro, torch.Generator().manual_seed(0))
    assert len(batches) == 4 and batches[0].tolist() == batches[2].tolist() and batches[1].tolist() == batches[3].tolist()
    first, second = set(batches[0].tolist()), set(batches[1].tolist())
    assert not first & second and first | second == set(range(8))
    # whole groups: every row of a group in a mini-batch is in that mini-batch
    assert all(set(torch.nonzero(group == g).flatten().tolist()) <= set(b.tolist()) for b in batches for g in group[b].tolist())
    with pytest.raises(ValueError):
        GRPO(GRPOOptions(steps_per_generation=0))
