"""Config: precedence defaults < preset < --config < flags < overrides; unknown keys and wrong types fail."""

from __future__ import annotations

import pytest

from rapidbench.config import ConfigError, parse_override, preset_names, resolve


def test_defaults_are_the_embedded_cpu_setting():
    cfg = resolve()
    assert (cfg.algo, cfg.task, cfg.model, cfg.sampler) == ("rapid", "arith", "smollm2-135m", "auto")
    assert cfg.algo_args.steps_per_generation == 4 and cfg.task_args.levels == [1]


def test_precedence(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: 3.0e-6\n  zero_stage: 1\nseed: 5\nalgo_args:\n  eta: 3.0\n")
    # preset sets lr and zero stage; the file beats the preset; flags beat the file; overrides beat flags
    cfg = resolve(preset="rapid-paper-gpu", config_file=str(f), flags={"seed": 7, "train.zero_stage": 2},
                  overrides=["train.zero_stage=3", "algo_args.eta=4"])
    assert cfg.train.lr == 3e-6  # file over preset (1e-6)
    assert cfg.seed == 7  # flag over file
    assert cfg.train.zero_stage == 3  # override over flag
    assert cfg.algo_args.eta == 4.0
    assert cfg.generation.max_new_tokens == 2048  # from the preset, nothing above it
    assert cfg.preset == "rapid-paper-gpu"


def test_flag_none_does_not_override(tmp_path):
    cfg = resolve(flags={"seed": None, "algo": "grpo"})
    assert cfg.seed == 0 and cfg.algo == "grpo"
    assert cfg.algo_args.scale_rewards is True  # GRPO's own options apply


@pytest.mark.parametrize("override,msg", [
    ("train.lrr=1", "unknown key train.lrr"),
    ("nosection.x=1", "unknown key nosection"),
    ("train.lr=abc", "train.lr: expected a number, got 'abc'"),
    ("train.zero_stage=1.5", "train.zero_stage: expected an integer"),
    ("train.lr_schedule=linear", "train.lr_schedule: 'linear' is not one of constant, warmup, cosine"),
    ("algo_args.nope=1", "unknown key algo_args.nope"),
    ("progress=maybe", "progress: expected true/false"),
])
def test_bad_overrides_name_the_key(override, msg):
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        resolve(overrides=[override])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        resolve(config_file=str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve(config_file=str(bad))
    with pytest.raises(ConfigError, match="unknown preset 'nope'; presets: "):
        resolve(preset="nope")
    with pytest.raises(ConfigError, match="must look like"):
        parse_override("train.lr")


def test_presets_all_resolve():
    assert preset_names()
    for name in preset_names():
        resolve(preset=name)


def test_saved_config_round_trips(tmp_path):
    import json

    cfg = resolve(flags={"algo": "grpo"}, overrides=["train.lr=1e-5", "eval.k=[1,2]"])
    cfg.save(tmp_path / "config.json")
    again = resolve(base=json.loads((tmp_path / "config.json").read_text()))
    assert again == cfg


@pytest.mark.parametrize("override, key", [
    ("train.zero_stage=4", "train.zero_stage"), ("time_budget=-5", "time_budget"), ("eval.n_samples=0", "eval.n_samples"),
    ("eval.k=[1,8]", "eval.k"), ("train.lr=0", "train.lr"), ("generation.temperature=0", "generation.temperature"),
    ("eval.target=1.5", "eval.target"), ("eval.log_samples=-1", "eval.log_samples"),
    ("train.micro_batch_size=0", "train.micro_batch_size"),
])
def test_values_out_of_range_are_one_line_errors(override, key):
    with pytest.raises(ConfigError) as e:
        resolve(overrides=[override])
    assert str(e.value).startswith(key) and "\n" not in str(e.value)


def test_training_on_a_task_without_a_train_split_fails_before_any_engine(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "rapidbench", "run", "--task", "humaneval", "--model", "tiny-random",
                        "--max-steps", "1", "--output", str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("rapidbench: error: humaneval has only a test split")
    assert "Traceback" not in r.stderr
