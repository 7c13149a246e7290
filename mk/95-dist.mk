# Packages a user installs, all into dist/:
#   dubbo-health-{core,proto,tonic}-VERSION.crate   what `cargo publish` uploads (checked with
#                                                   `cargo publish --workspace --dry-run`)
#   dubbo_health-VERSION-cp39-abi3-*.whl            the Python wheel (abi3: CPython >= 3.9)
#   dubbo_health-VERSION.tar.gz                     the Python sdist (builds with pip, offline)
#   dubbo-health-c-VERSION-TRIPLE.tar.gz            the C library: header, stripped .so/.a,
#                                                   pkg-config and CMake files, license
#   dubbo-health-c-VERSION-TRIPLE-dbg.tar.gz        its debug info (lib/.debug/*.debug)
#   SHA256SUMS
#
#   make dist        install what is missing (make deps), then build all of it
#   make test-dist   (in make test) install each package into a fresh place and probe it

TEST_TARGETS += test-dist
.PHONY: dist dist-build dist-crates dist-python dist-c test-dist

DIST ?= $(CURDIR)/dist
DIST_VERSION := $(C_VERSION)
DIST_CRATES := dubbo-health-core dubbo-health-proto dubbo-health-tonic
DIST_TRIPLE = $(shell rustc -vV | sed -n 's/^host: //p')
C_DIST_NAME = dubbo-health-c-$(DIST_VERSION)-$(DIST_TRIPLE)
C_DIST_STAGE := $(CARGO_TARGET_DIR)/dist-c
# Tarballs are reproducible: sorted, owned by root, dated by the last commit.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
DIST_TAR = tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$(SOURCE_DATE_EPOCH)

dist:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory dist-build

dist-build: dist-crates dist-python dist-c
	cd $(DIST) && rm -f SHA256SUMS && sha256sum * > SHA256SUMS
	@echo "make dist: $(DIST)"; ls -l $(DIST) | tail -n +2

# `cargo publish --dry-run` packages each crate and builds it from the package, against the
# other two packaged ones (they are not on crates.io yet), which cargo serves from a local
# registry in target/package. Cargo takes a registry crate of a given name and version to
# be immutable: it never unpacks it again (under $CARGO_HOME/registry/src/-HASH/) nor
# rebuilds it. So the last run's unpacked copies go first, and the check builds in a target
# dir of its own from which our crates are cleaned: otherwise tonic would be checked against
# the core of an earlier run. (The registry crates stay built there between runs.)
CARGO_HOME ?= $(HOME)/.cargo
DIST_VERIFY_DIR := $(CARGO_TARGET_DIR)/publish-check
dist-crates:
	rm -rf $(foreach c,$(DIST_CRATES),$(CARGO_HOME)/registry/src/-*/$(c)-$(DIST_VERSION))
	$(CARGO) clean --quiet --target-dir $(DIST_VERIFY_DIR) $(addprefix -p ,$(DIST_CRATES))
	$(CARGO) publish --workspace --dry-run --locked --allow-dirty --target-dir $(DIST_VERIFY_DIR)
	$(CARGO) package --locked --allow-dirty --no-verify $(addprefix -p ,$(DIST_CRATES))
	@mkdir -p $(DIST)
	cp $(foreach c,$(DIST_CRATES),$(CARGO_TARGET_DIR)/package/$(c)-$(DIST_VERSION).crate) $(DIST)/

# The same interpreter as `make python-install`, so the release build is shared.
dist-python:
	@mkdir -p $(DIST)
	rm -f $(DIST)/dubbo_health-*
	cd python && $(PYTHON) -m maturin build --release --locked -i $(PYTHON) -o $(DIST)
	cd python && $(PYTHON) -m maturin sdist -o $(DIST)

dist-c:
	rm -rf $(C_DIST_STAGE)
	$(MAKE) --no-print-directory install-c PREFIX=/usr/local DESTDIR=$(C_DIST_STAGE) C_PC_RELOCATABLE=1
	mv $(C_DIST_STAGE)/usr/local $(C_DIST_STAGE)/$(C_DIST_NAME)
	@mkdir -p $(DIST)
	rm -f $(DIST)/dubbo-health-c-*
	$(DIST_TAR) -C $(C_DIST_STAGE) --exclude=$(C_DIST_NAME)/lib/.debug -cf - $(C_DIST_NAME) | gzip -n > $(DIST)/$(C_DIST_NAME).tar.gz
	$(DIST_TAR) -C $(C_DIST_STAGE) -cf - $(C_DIST_NAME)/lib/.debug | gzip -n > $(DIST)/$(C_DIST_NAME)-dbg.tar.gz

test-dist: dist-build
	DIST=$(DIST) C_DIST_NAME=$(C_DIST_NAME) DIST_VERSION=$(DIST_VERSION) \
		WHEELHOUSE=$(CARGO_TARGET_DIR)/wheelhouse SDIST_BUILD=$(CARGO_TARGET_DIR)/sdist-build bash tests/dist/test-dist.sh
