# Two commands a new user needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cascadec-installed

.PHONY: setup demo calibrate-demo test test-fast lint generate bench bench-smoke evidence clean fuzz

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -e '.[cpu,openai,ray,serve,dev,bench,router]'
	@# torchvision/torchaudio/torchcodec break `transformers` imports on the CPU build
	$(PY) -m pip uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/cascadec demo

# Re-record the calibration bank (zoo draw seed 11) and re-calibrate specs/demo.yaml and
# specs/confidence_cascade.yaml from specs/search/ (a few minutes on 2 cores).
calibrate-demo: setup
	PY=$(PY) scripts/calibrate_demo.sh

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not integration"

lint: setup
	$(VENV)/bin/ruff check cascadec tests tools $(wildcard benchmarks)
	$(VENV)/bin/ruff format --check cascadec tests tools $(wildcard benchmarks)
	$(VENV)/bin/lint-imports

# Regenerate what is derived from the code and checked by tests: golden plans, the README's
# diagnostic-code table, the exported JSON Schemas.
generate: setup
	$(PY) tools/generate.py

# Benchmarks: every figure a ratio measured side by side in one run; writes benchmarks/results/
# latest.json + latest.md and the README's Performance table (a missed target shows as missed).
bench: setup
	$(PY) benchmarks/run_all.py

bench-smoke: setup
	$(PY) benchmarks/run_all.py --smoke

# Evidence on real models: every shipped real bank (data/banks/) through optimize and calibrate;
# writes benchmarks/results/evidence.{json,md} and the README's "Evidence on real models" tables.
evidence: setup
	$(PY) benchmarks/bench_real.py --readme

# fuzz: the Hypothesis fuzzers of every input kind with many more examples than the normal suite
FUZZ_EXAMPLES ?= 2000
fuzz: setup
	CASCADEC_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/fuzz -q

clean:
	rm -rf $(VENV) dist build .pytest_cache .hypothesis .ruff_cache .import_linter_cache .grimp_cache
