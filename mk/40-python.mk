# Python bindings (python/): the wheel installed into .venv, then ruff, mypy, stubtest, pytest.
#   make test-python      reinstall `./python` if its sources changed, lint, type-check, test
#   make python-install   just (re)build and install the wheel

TEST_TARGETS += test-python
.PHONY: test-python python-install python-lint

PY_STAMP := $(CARGO_TARGET_DIR)/python-installed.stamp
PY_SOURCES := $(shell find python/src python/dubbo_health core/src tonic-adapter/src proto \
	-type f -not -name '*.pyc' 2>/dev/null) python/Cargo.toml python/pyproject.toml \
	core/Cargo.toml tonic-adapter/Cargo.toml Cargo.lock

$(PY_STAMP): $(PY_SOURCES)
	$(PYTHON) -m pip install -q --force-reinstall --no-deps --no-build-isolation ./python
	@mkdir -p $(@D) && touch $@

python-install: $(PY_STAMP)

python-lint: $(PY_STAMP)
	cd python && $(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check .
	cd python && $(PYTHON) -m mypy tests examples dubbo_health
	cd /tmp && $(PYTHON) -m mypy.stubtest dubbo_health._native

# The pytest script (not `python -m`, which puts the cwd on sys.path) so that
# `import dubbo_health` is the installed wheel, not the source folder.
test-python: python-lint
	cd python && $(dir $(PYTHON))pytest -p no:cacheprovider
