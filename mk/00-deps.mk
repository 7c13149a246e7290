# What the suites need, installed by the same ci/install-*.sh steps CI runs (ci/deps.sh), each
# checking first, so a machine that has everything spends a few seconds here.
#   make deps        install whatever is missing (make test and make dist run it first)
#   make test-deps   a second run installs nothing, changes nothing, and is quick
#   make test-demo   `make demo` works with nothing but a Rust toolchain (no Go, no venv)

TEST_TARGETS += test-deps test-demo
LINT_TARGETS += lint-ci
.PHONY: deps test-deps test-demo lint-ci

# The most a run of ci/deps.sh may take when everything is installed (measured: about 3 s).
DEPS_MAX_SECONDS ?= 20

deps:
	bash ci/deps.sh

test-deps:
	DEPS_MAX_SECONDS=$(DEPS_MAX_SECONDS) bash ci/test-deps.sh

test-demo:
	bash ci/test-demo.sh

# The install steps and the shell tests: shellcheck, and ruff/mypy for the pip check.
lint-ci:
	shellcheck -x ci/*.sh .ci/run tests/dist/*.sh
	$(PYTHON) -m ruff check --config python/pyproject.toml ci
	$(PYTHON) -m ruff format --check --config python/pyproject.toml ci
	$(PYTHON) -m mypy --strict ci/pip-missing.py
