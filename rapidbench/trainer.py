"""The shared DeepSpeed ZeRO trainer (`deepspeed`), used by every algorithm.

It owns the engine(s) and knows nothing of tasks or algorithm names: it computes log-probs, runs
one optimizer step of an algorithm's loss over micro-batches, streams (gathered) parameters to the
sampler, and saves / loads checkpoints.
"""

from __future__ import annotations

import json
from typing import Iterator

import torch

from rapidbench import distributed
from rapidbench.algorithms.base import Algorithm, LossInputs
from rapidbench.logprobs import token_logprobs, token_values
from rapidbench.registry import register_trainer
from rapidbench.rollouts import Rollouts
from rapidbench.samplers.base import default_device, pick_dtype


def ds_config(train, micro_batch: int, grad_accum: int, world_size: int, dtype: torch.dtype) -> dict:
    """The DeepSpeed config as one plain function of our TrainConfig (OpenRLHF's shape)."""
    zero: dict = {"stage": train.zero_stage}
    if train.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
        # We always pass torch's AdamW (no op to compile, same maths everywhere); DeepSpeed refuses
        # that with offload unless told: the CPU step is slower than DeepSpeedCPUAdam, not wrong.
        zero_force = {"zero_force_ds_cpu_optimizer": False}
    else:
        zero_force = {}
    if train.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    if train.zero_stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = False
    cfg = {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": grad_accum,
        "train_batch_size": micro_batch * grad_accum * world_size,
        "gradient_clipping": train.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": dtype == torch.bfloat16},
        "fp16": {"enabled": dtype == torch.float16},
        "zero_allow_untested_optimizer": True,
        **zero_force,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if train.deepspeed_config:
        with open(train.deepspeed_config) as f:
            cfg = merge_ds_json(cfg, json.load(f))
    return cfg


def merge_ds_json(ours: dict, theirs: dict) -> dict:
    """Merge a user's DeepSpeed JSON over ours; a value of "auto" keeps ours (HF Trainer's convention)."""
    out = dict(ours)
    for key, value in theirs.items():
        if value == "auto":
            continue
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_ds_json(out[key], value)
        else:
            out[key] = value
    return out


def lr_lambda(schedule: str, warmup: int, total: int):
    """Multiplier on the base LR per optimizer step: constant, linear warmup, or warmup + cosine."""
    import math

    def f(step: int) -> float:
        if schedule == "constant":
            return 1.0
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "warmup":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1 + math.cos(math.pi * progress))

    return f


def init_value_head(head: torch.nn.Linear, zero3: bool) -> None:
    """Start the critic's values near 0. With the model's own init (std 0.02), values on unit-scale
    hidden states have std ~0.5: per-token TD errors of that size swamp 0/1 rewards and PPO's first
    steps follow noise (measured: pass@1 0.48 -> 0.26 in 5 steps). OpenRLHF's std 1/(d+1) instead."""
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(head.parameters()), modifier_rank=0, enabled=zero3):
        torch.nn.init.normal_(head.weight, std=1.0 / (head.in_features + 1))
        if head.bias is not None:
            torch.nn.init.zeros_(head.bias)


def micro_batches(mb: Rollouts, size: int, keep_groups: bool) -> list[torch.Tensor]:
    """Row indices of each micro-batch, sorted by length so each pads to little more than its own
    rows (select() trims the columns no row needs). With `keep_groups`, groups are ordered by their
    longest row and never split unless a group is larger than `size`. The cut is a sum over
    micro-batches, so any order gives the same gradient."""
    lengths = mb.attention_mask.sum(1)  # [n] real tokens per row
    if keep_groups:
        ids, inv = torch.unique(mb.group, return_inverse=True)
        longest = torch.stack([lengths[inv == g].max() for g in range(len(ids))])  # [P]
        rank_of_group = torch.argsort(torch.argsort(longest, stable=True))  # [P] position of each group
        order = torch.argsort(rank_of_group[inv] * (mb.size + 1) + torch.arange(mb.size), stable=True)  # [n]
    else:
        order = torch.argsort(lengths, stable=True)  # [n]
    return [order[s : s + size] for s in range(0, mb.size, size)]


def groups_within(group: torch.Tensor, chunks: list[torch.Tensor]) -> bool:
    """Does every group (prompt) lie inside one chunk of rows? group: [n]."""
    seen: set[int] = set()
    for idx in chunks:
        here = set(group[idx].tolist())
        if here & seen:
            return False
        seen |= here
    return True


def disable_dropout(model: torch.nn.Module) -> torch.nn.Module:
    """RL needs deterministic forwards: pi_old, pi_theta and values must be comparable across passes.
    (LlamaForTokenClassification, our critic, ships a 0.1 dropout on its head by default.)"""
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


class DeepSpeedTrainer:
    """DeepSpeed engine (ZeRO 0-3, offload, bf16, clipping, accumulation) with a torch AdamW."""

    def __init__(self, model_path: str, train, *, mini_batch: int, temperature: float, needs, total_steps: int,
                 seed: int = 0, group_size: int = 1):
        import deepspeed
        from transformers import AutoModelForCausalLM

        self.train_cfg = train
        self.temperature = temperature
        self.device = default_device()
        self.dtype = pick_dtype(train.dtype, self.device)
        self.world_size, self.rank = distributed.world_size(), distributed.rank()
        # Each rank trains on its shard of the mini-batch; micro-batches split that shard. A micro-batch
        # holds whole groups where it can (a multiple of G): RAPID then gets each step's importance
        # weights from the training forward itself, with no extra pass.
        per_rank = max(1, mini_batch // self.world_size)
        micro = max(1, min(train.micro_batch_size, per_rank))
        self.micro_batch = micro // group_size * group_size if group_size <= micro else micro
        self.grad_accum = -(-per_rank // self.micro_batch)
        torch.manual_seed(seed)

        self._ds_cfg = ds_config(train, self.micro_batch, self.grad_accum, self.world_size, self.dtype)
        if train.zero_stage == 3:
            # transformers' documented ZeRO-3 hook: while this object lives, from_pretrained creates
            # parameters partitioned (zero.Init) and loads the checkpoint into the partitions, so
            # no rank ever holds the whole model. Kept on self: transformers holds only a weakref.
            from transformers.integrations import HfDeepSpeedConfig

            self._hf_ds = HfDeepSpeedConfig(self._ds_cfg)

        attn = train.attn_implementation
        if attn == "auto":
            attn = "sdpa" if self.device.startswith("cuda") else "eager"

        def load(dtype, auto=AutoModelForCausalLM, **kw):
            return disable_dropout(auto.from_pretrained(model_path, dtype=dtype, attn_implementation=attn, **kw))

        def adamw(params, lr):
            kernel = {"fused": {"fused": True}, "foreach": {"foreach": True}, "for-loop": {"foreach": False}}
            return torch.optim.AdamW(params, lr=lr, betas=(train.adam_beta1, train.adam_beta2),
                                     weight_decay=train.weight_decay, **kernel[train.adam_implementation])

        model = load(torch.float32 if self.dtype == torch.float32 else self.dtype)
        if train.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        model.config.use_cache = False
        opt = adamw(model.parameters(), train.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(train.lr_schedule, train.warmup_steps, total_steps))
        self.policy_rows = 0  # rows the policy has forwarded, training and no-grad passes alike (equal-work audit)
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=opt, lr_scheduler=sched, config=self._ds_cfg
        )
        self.ref = None
        if needs.reference_model:
            ref = load(self.dtype)
            ref_cfg = {**self._ds_cfg, "zero_optimization": {"stage": 3 if train.zero_stage == 3 else 0}}
            self.ref, *_ = deepspeed.initialize(model=ref, config=ref_cfg)
            self.ref.eval()
        self.critic = None
        if needs.critic:
            # The value model: the policy's backbone with a fresh scalar head, its own engine and AdamW.
            from transformers import AutoModelForTokenClassification

            critic = load(self.dtype, AutoModelForTokenClassification, num_labels=1)
            critic.config.use_cache = False
            init_value_head(critic.score, zero3=train.zero_stage == 3)
            copt = adamw(critic.parameters(), needs.critic_lr or train.lr)
            self.critic, *_ = deepspeed.initialize(model=critic, optimizer=copt, config=self._ds_cfg)

    # -- log-probs --------------------------------------------------------------------------------
    @torch.no_grad()
    def logprobs(self, rollouts: Rollouts, which: str = "policy") -> torch.Tensor:
        """[N, T] log-probs of the completion tokens under the policy or the reference, micro-batched."""
        engine = self.engine if which == "policy" else self.ref
        if which == "policy":
            self.policy_rows += rollouts.size
        return self._per_token(engine, rollouts, lambda ids, attn, P, mask: token_logprobs(engine, ids, attn, P, self.temperature, mask))

    @torch.no_grad()
    def values(self, rollouts: Rollouts) -> torch.Tensor:
        """[N, T] critic values of the state before each completion token, micro-batched."""
        return self._per_token(self.critic, rollouts, lambda ids, attn, P, mask: token_values(self.critic, ids, attn, P))

    def _per_token(self, engine, rollouts: Rollouts, fn) -> torch.Tensor:
        """Run fn(ids, attn, prompt_len, mask) -> [n, t] over length-sorted micro-batches in eval
        mode; [N, T], 0 on padding."""
        was_training = engine.module.training
        engine.eval()
        out = torch.zeros(rollouts.completion_mask.shape)  # [N, T]
        for idx in micro_batches(rollouts, self.micro_batch, keep_groups=False):
            mb = rollouts.select(idx)
            x = fn(mb.input_ids.to(self.device), mb.attention_mask.to(self.device), mb.prompt_len, mb.completion_mask)
            out[idx, : x.shape[1]] = x.cpu() * mb.completion_mask  # select() trimmed t
        if was_training:
            engine.train()
        return out

    # -- one optimizer step -----------------------------------------------------------------------
    def step(self, mb: Rollouts, algo: Algorithm, old_is_current: bool = False) -> dict[str, float]:
        """One optimizer step on mini-batch `mb` (this rank's shard), accumulated over micro-batches.

        Exact at any world size and micro-batch size: each micro-batch's loss is divided by the
        *global* mini-batch's normaliser over W (sequences or real tokens, summed over ranks), so
        DeepSpeed's average over ranks of the accumulated gradients is the gradient of one big
        batch, and clipping and the logged grad norm refer to it. Loss and stats are global too.

        `old_is_current`: pi_old of these rows is the current policy, taken from this step's own
        training forward (detached; ratio exactly 1, no separate pass), and written to `mb.old_logps`.
        Algorithms with `needs.step_logprobs` (RAPID) get the current policy's log-probs before the
        loss: none needed when `old_is_current` (w = 1), else from the training forward when every
        group lies within one micro-batch, else from one no-grad pass.
        """
        self.engine.train()
        norm = distributed.all_reduce_sum([algo.normaliser(mb)])[0] / self.world_size
        keep_groups = algo.needs.step_logprobs and not old_is_current  # RAPID's weights need whole groups
        chunks = micro_batches(mb, self.micro_batch, keep_groups)
        if len(chunks) > self.grad_accum:
            raise RuntimeError(f"mini-batch of {mb.size} needs {len(chunks)} micro-batches > accumulation {self.grad_accum}")
        fused = False
        if algo.needs.step_logprobs:
            if old_is_current:
                algo.step_advantages(mb, None)
            elif groups_within(mb.group, chunks):
                fused = True
            else:
                algo.step_advantages(mb, self.logprobs(mb))
        own_old: list[torch.Tensor] = []
        loss, stats, own_norm = self._accumulate(
            self.engine, mb, chunks,
            lambda m: self._micro_loss(m, algo, norm, fused, own_old if old_is_current else None), track_norm=True)
        if old_is_current:
            mb.old_logps = torch.zeros(mb.completion_mask.shape)  # [n, T]
            for idx, x in zip(chunks, own_old):
                mb.old_logps[idx, : x.shape[1]] = x
        out = {**stats, "loss": loss}
        gn = self.engine.get_global_grad_norm()
        out["grad_norm"] = float(gn) if gn is not None else own_norm
        out["lr"] = float(self.scheduler.get_last_lr()[0]) if self.scheduler else self.train_cfg.lr
        if self.critic is not None:  # one critic step on the same mini-batch, same accumulation rule
            out.update(self._accumulate(self.critic, mb, chunks, lambda m: self._value_loss(m, algo, norm))[1])
        return out

    def _accumulate(self, engine, mb: Rollouts, chunks: list[torch.Tensor], micro_loss, track_norm: bool = False):
        """Backward each micro-batch's loss into `engine` and step at the boundary.

        Ranks may hold fewer rows than the accumulation count: an empty slot steps with a zero
        loss so every rank reaches the boundary (and the gradient all-reduce) together.
        Returns (global loss, row-weighted global mean stats, pre-clip grad norm where we track it).
        """
        total, stats_sum, own_norm = 0.0, {}, float("nan")
        for i in range(self.grad_accum):
            idx = chunks[i] if i < len(chunks) else chunks[-1][:0]
            if len(idx):
                loss, stats = micro_loss(mb.select(idx))
            else:
                loss, stats = (next(engine.module.parameters()).sum() * 0.0).float(), {}
            engine.backward(loss, scale_wrt_gas=False)
            if track_norm and i == self.grad_accum - 1:
                own_norm = self._grad_norm_if_untracked()
            engine.step()
            total += float(loss.detach())
            for k, v in stats.items():
                stats_sum[k] = stats_sum.get(k, 0.0) + v * len(idx)
        # Every rank computed the same stat names (one algorithm); sum over ranks, then normalise.
        keys = sorted(stats_sum)
        summed = distributed.all_reduce_sum([total, float(mb.size), *(stats_sum[k] for k in keys)])
        loss = summed[0] / self.world_size  # each rank's share is its rows' loss x W / global normaliser
        return loss, {k: v / max(summed[1], 1.0) for k, v in zip(keys, summed[2:])}, own_norm

    def _value_loss(self, m: Rollouts, algo: Algorithm, norm: float):
        dev = self.device
        vals = token_values(self.critic, m.input_ids.to(dev), m.attention_mask.to(dev), m.prompt_len)  # [n, T]
        return algo.value_loss(LossInputs(
            logps=vals.detach(), old_logps=vals.detach(), mask=m.completion_mask.to(dev),
            advantages=m.advantages.to(dev), norm=norm, values=vals,
            old_values=m.values.to(dev), returns=m.returns.to(dev)))

    def _micro_loss(self, m: Rollouts, algo: Algorithm, norm: float, fused: bool, own_old: list | None):
        dev = self.device
        self.policy_rows += m.size
        logps = token_logprobs(self.engine, m.input_ids.to(dev), m.attention_mask.to(dev), m.prompt_len,
                               self.temperature, m.completion_mask)  # [n, T], 0 on padding
        current = logps.detach().cpu() * m.completion_mask  # [n, T]
        if own_old is not None:  # pi_old is this very forward
            m.old_logps = current
            own_old.append(current)
        if fused:  # whole groups in this micro-batch: its own detached log-probs are "current"
            algo.step_advantages(m, current)
        stats: dict[str, float] = {k: v for k, v in m.extras.items() if isinstance(v, float)}  # e.g. RAPID's iw_mean
        adv = m.advantages.to(dev)
        inp = LossInputs(
            logps=logps,
            old_logps=m.old_logps.to(dev),
            mask=m.completion_mask.to(dev),
            advantages=adv,
            norm=norm,
            ref_logps=m.ref_logps.to(dev) if m.ref_logps is not None else None,
        )
        loss, algo_stats = algo.loss(inp)
        return loss, {**stats, **algo_stats}

    def _grad_norm_if_untracked(self) -> float:
        """Pre-clip global grad norm where DeepSpeed does not record one (plain torch optimizer, ZeRO-0 fp32)."""
        if hasattr(self.engine.optimizer, "_global_grad_norm"):
            return float("nan")  # DeepSpeed's own value is read after the step
        # Called after the boundary backward, which has already averaged the grads over ranks.
        sq = sum(float(p.grad.float().pow(2).sum()) for p in self.engine.module.parameters() if p.grad is not None)
        return sq**0.5

    def named_params(self) -> Iterator[tuple[str, torch.Tensor]]:
        """(HF name, full tensor) pairs, streamed one parameter at a time; gathered under ZeRO-3.

        Tied embeddings appear once (named_parameters de-duplicates), as the HF checkpoint has them.
        Under ZeRO-3 each tensor is a copy made while gathered, since the consumer may keep it
        after the gather context closes.
        """
        import deepspeed

        for name, p in self.engine.module.named_parameters():
            if hasattr(p, "ds_id"):  # ZeRO-3 partitioned
                with deepspeed.zero.GatheredParameters([p], modifier_rank=None):
                    yield name, p.detach().clone()
            else:
                yield name, p.detach()

    # -- checkpoints ------------------------------------------------------------------------------
    def save(self, directory: str, tag: str, client_state: dict) -> None:
        self.engine.save_checkpoint(directory, tag=tag, client_state=client_state)

    def load(self, directory: str, tag: str) -> dict:
        _, client_state = self.engine.load_checkpoint(directory, tag=tag)
        return client_state or {}


@register_trainer("deepspeed")
def deepspeed_trainer(*args, **kwargs) -> DeepSpeedTrainer:
    """DeepSpeed ZeRO 0-3 engine with torch AdamW; shared by every algorithm."""
    return DeepSpeedTrainer(*args, **kwargs)
