# facecast: `make demo` and `make test` each do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.facecast-installed
# The Khronos glTF validator (npm, run with Node.js) for the glTF exporter's
# tests, installed into the venv's folder; `make clean` removes it with the venv.
# (the stamp names the version, so changing it here installs the new one)
GLTF_VALIDATOR := gltf-validator@2.0.0-dev.3.10
NODE_PREFIX := $(VENV)/node
VALIDATOR_STAMP := $(NODE_PREFIX)/.installed-$(GLTF_VALIDATOR)
# Debian packages: headless OpenGL (EGL + llvmpipe), the browser for the web
# client tests, and a virtual X server for the window tests.
APT_PACKAGES := libegl1 libgl1-mesa-dri chromium xvfb xauth
# `make demo DEMO_ARGS="--headless --seconds 10"` for a bounded run without a window
DEMO_ARGS ?=

.PHONY: demo test install system-deps clean

demo: install
	$(VENV)/bin/facecast doctor || true
	$(VENV)/bin/facecast demo $(DEMO_ARGS)

test: install
	$(PY) -m pytest -q

install: system-deps $(STAMP) $(VALIDATOR_STAMP)

# torch is installed as torch==2.13.0 when the venv has none (the CPU build
# here); an existing torch is kept.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev,track]'
	touch $(STAMP)

# npm missing: a note, no stamp (so a later `make install` tries again), and
# the validator test skips with its reason.
$(VALIDATOR_STAMP): | $(STAMP)
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "gltf-validator: npm not found; skipping (install Node.js and npm, then make install)"; exit 0; fi; \
	echo "gltf-validator: installing $(GLTF_VALIDATOR) into $(NODE_PREFIX)"; \
	npm install --no-audit --no-fund --prefix $(NODE_PREFIX) $(GLTF_VALIDATOR) && touch $@

system-deps:
	@if ! command -v dpkg >/dev/null 2>&1; then \
	  echo "system-deps: not a Debian system; install EGL/Mesa, Chromium and Xvfb yourself"; exit 0; fi; \
	missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "system-deps: all present"; exit 0; fi; \
	echo "system-deps: installing$$missing"; \
	sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
