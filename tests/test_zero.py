"""ZeRO stages 0-3 follow the same loss trajectory on the tiny model; ZeRO-3 gathers full
parameters for the sampler's weight sync."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rapidbench.algorithms.grpo import GRPO, GRPOOptions
from test_trainer import make_trainer, toy_rollouts


def trajectory(trainer, steps=3):
    algo = GRPO(GRPOOptions(group_size=2, prompts_per_step=4, num_iterations=steps))
    ro = toy_rollouts()
    ro.old_logps = trainer.logprobs(ro)
    algo.advantages(ro)
    return [trainer.step(ro, algo)["loss"] for _ in range(steps)]


@pytest.fixture(scope="module")
def stage0(tiny_model, dist):
    return trajectory(make_trainer(tiny_model, micro=4, zero=0))


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_zero_stages_match_stage0(tiny_model, dist, stage0, stage):
    losses = trajectory(make_trainer(tiny_model, micro=4, zero=stage))
    print(f"ZeRO-{stage}: {losses} vs ZeRO-0: {stage0}")
    assert losses == pytest.approx(stage0, rel=1e-4, abs=1e-6)
    assert stage0[0] != stage0[-1]  # the trajectory moved: weights changed between steps


def test_zero3_named_params_are_gathered(tiny_model, dist):
    from transformers import AutoModelForCausalLM

    ref = dict(AutoModelForCausalLM.from_pretrained(tiny_model).named_parameters())
    trainer = make_trainer(tiny_model, micro=4, zero=3)
    got = dict(trainer.named_params())
    assert set(got) == set(ref)  # tied lm_head appears once, as in the checkpoint
    for name, p in ref.items():
        assert got[name].shape == p.shape and torch.allclose(got[name], p.detach())


def test_offload_optimizer_matches(tiny_model, dist, stage0):
    """ZeRO-2 with the optimizer state offloaded to CPU memory follows the same trajectory."""
    from rapidbench.config import TrainConfig
    from rapidbench.trainer import DeepSpeedTrainer
    from test_trainer import RAPID, RAPIDOptions

    torch.manual_seed(0)
    cfg = TrainConfig(dtype="float32", lr=1e-5, micro_batch_size=4, zero_stage=2, grad_clip=0.0, offload_optimizer=True)
    trainer = DeepSpeedTrainer(tiny_model, cfg, mini_batch=8, temperature=0.7, needs=RAPID(RAPIDOptions()).needs, total_steps=10)
    assert trainer._ds_cfg["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert trajectory(trainer) == pytest.approx(stage0, rel=1e-4, abs=1e-6)


def test_lr_schedules():
    from rapidbench.trainer import lr_lambda

    assert [lr_lambda("constant", 0, 10)(s) for s in (0, 5, 9)] == [1.0, 1.0, 1.0]
    warm = lr_lambda("warmup", 4, 10)
    assert [warm(s) for s in (0, 1, 3, 4, 9)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    cos = lr_lambda("cosine", 2, 12)
    assert cos(0) == 0.5 and cos(2) == 1.0 and cos(7) == pytest.approx(0.5) and cos(12) == pytest.approx(0.0)


def test_deepspeed_json_merges_over_ours(tmp_path):
    import json

    from rapidbench.config import TrainConfig
    from rapidbench.trainer import ds_config

    f = tmp_path / "ds.json"
    f.write_text(json.dumps({"train_micro_batch_size_per_gpu": "auto", "gradient_clipping": 0.5,
                             "zero_optimization": {"stage": 3, "reduce_bucket_size": 1000}}))
    cfg = ds_config(TrainConfig(zero_stage=1, micro_batch_size=4, deepspeed_config=str(f)), 4, 2, 1, torch.float32)
    assert cfg["train_micro_batch_size_per_gpu"] == 4  # "auto" keeps ours
    assert cfg["gradient_clipping"] == 0.5 and cfg["zero_optimization"] == {"stage": 3, "reduce_bucket_size": 1000}
    assert cfg["train_batch_size"] == 8
    shipped = Path(__file__).resolve().parent.parent / "launchers" / "ds_zero3.json"
    cfg3 = ds_config(TrainConfig(deepspeed_config=str(shipped)), 4, 2, 1, torch.float32)
    assert cfg3["zero_optimization"]["stage"] == 3 and cfg3["train_batch_size"] == 8
