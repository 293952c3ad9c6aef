# Two commands set up a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CERTS  := .dev-certs
# make deploy-dev / make manifests (docs/deploy.md); IMAGE=REGISTRY/carbongate@sha256:... pins a release.
DEPLOY_DEV   ?= build/deploy-dev
INSTALL_YAML ?= dist/install.yaml
IMAGE        ?=

.PHONY: run test soak bench lint image deploy-dev manifests constraints clean

# Every version comes from constraints.txt (what CI and the image install;
# `make constraints` regenerates it from this venv). The embedded OPA engine
# declares Python >= 3.14 but works on 3.11 through ctypes, so below 3.14 it
# goes in first, on its own, with --ignore-requires-python (pyproject.toml
# lists it for 3.14+, where pip installs it with the rest).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -c constraints.txt --ignore-requires-python opa-golib-python-bindings
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

## constraints: pin what this venv holds (after changing a dependency in pyproject.toml)
constraints: $(STAMP)
	{ sed -n '/^#/p' constraints.txt; $(BIN)/pip freeze --all --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

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

## lint: ruff, mypy --strict (bench/ and scripts/ too) and the import contracts of
## pyproject.toml (the layers in docs/architecture.md; tests/architecture runs them in `make test`)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy carbongate webhook policy_engine planner carbon_feed deferral governance certs simulate bench scripts
	$(BIN)/lint-imports

image:
	docker build -t carbongate:dev .

## deploy-dev: a development install in one step: certificate, OPA tokens and the rendered
## manifests in build/deploy-dev/; then `kubectl apply -f build/deploy-dev/install.yaml`
deploy-dev: $(STAMP)
	$(BIN)/python scripts/manifests.py dev --out $(DEPLOY_DEV)

## manifests: the prod overlay as one file, dist/install.yaml, for `kubectl apply -f`
## (needs kubectl only; IMAGE=REGISTRY/carbongate@sha256:DIGEST pins the image of a release)
manifests:
	$(PYTHON) scripts/manifests.py prod --out $(INSTALL_YAML) $(if $(IMAGE),--image $(IMAGE))

clean:
	rm -rf $(VENV) $(CERTS) .state build dist *.egg-info
