# Two commands set up a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CERTS  := .dev-certs

.PHONY: run test soak bench lint image clean

# The embedded OPA engine declares Python >= 3.14 but works on 3.11 through
# ctypes, so it goes in first, on its own, with --ignore-requires-python.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --ignore-requires-python opa-golib-python-bindings==0.4.4
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(CERTS)/tls.crt: | $(STAMP)
	$(BIN)/carbongate certs generate --service carbongate-webhook --namespace carbongate --out $(CERTS)

## run: serve the webhook on https://127.0.0.1:8443 (embedded OPA, bundled demo grid data)
run: $(STAMP) $(CERTS)/tls.crt
	CARBONGATE_WEBHOOK_NAMESPACE_LABELS_SOURCE=file CARBONGATE_WEBHOOK_NAMESPACE_LABELS_FILE=examples/namespaces.yaml \
		$(BIN)/carbongate serve --dev

## test: install and run every test (Rego, unit, integration, fuzz, faults, short load)
test: $(STAMP)
	bash scripts/ensure-postgres.sh
	$(BIN)/python -m pytest -n 2 --dist loadgroup

## soak: 10 minutes at 400 req/s (twice bench/admission.py's sustained rate) with the workers' RSS
## sampled, kept out of `make test`; prints its figures. CARBONGATE_SOAK_RATE and
## CARBONGATE_SOAK_SECONDS change the load (docs/reliability.md).
soak: $(STAMP)
	$(BIN)/python -m pytest -m soak -p no:xdist -s tests/reliability

## bench: the benchmarks; each prints its figures
bench: $(STAMP)
	$(BIN)/python bench/admission.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/carbon.py

## lint: ruff, mypy --strict (deploy/ and bench/ too) and the import contracts of
## pyproject.toml (the layers in docs/architecture.md; tests/architecture runs them in `make test`)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy carbongate webhook policy_engine planner carbon_feed deferral governance certs simulate bench deploy
	$(BIN)/lint-imports

image:
	docker build -t carbongate:dev .

clean:
	rm -rf $(VENV) $(CERTS) .state build dist *.egg-info
