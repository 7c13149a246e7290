# Interop suite (tests/interop/): every host dubbo-health offers × every real health client,
# plus hostile input against every host. Peers are installed by ci/install-80-interop.sh; a
# missing one fails the suite.
#   make test-interop   build the hosts, run the suite (part of `make test`)
#   make interop        the same, and write the result matrix to docs/interop.md

TEST_TARGETS += test-interop
LINT_TARGETS += lint-interop
.PHONY: test-interop interop interop-hosts interop-goclient lint-interop

INTEROP := tests/interop
INTEROP_BIN := $(INTEROP)/bin
INTEROP_OUT := $(CARGO_TARGET_DIR)/interop
C_NATIVE_LIBS ?= -lgcc_s -lutil -lrt -lpthread -lm -ldl

# Hosts: the CLI, a tonic host mounting HealthService beside its own service, a C program on
# dh_server_start, the grpc++ example host, and the Python package (serve, grpcio sync and aio).
interop-hosts: python-install
	$(CARGO) build -p dubbo-health-cli --locked --bins --examples
	$(CARGO) build -p dubbo-health-c --locked
	@mkdir -p $(INTEROP_BIN)
	cc -std=c99 -Wall -Wextra -Wpedantic -Werror -O1 -Ic-api/include $(INTEROP)/hosts/chost.c \
		$(CARGO_TARGET_DIR)/debug/libdubbo_health.a $(C_NATIVE_LIBS) -o $(INTEROP_BIN)/chost
	rm -rf $(INTEROP_OUT)/prefix
	$(MAKE) --no-print-directory install-c PREFIX=$(INTEROP_OUT)/prefix
	cmake -S c-api/examples/grpcpp-host -B $(INTEROP_OUT)/grpcpp-host -DCMAKE_PREFIX_PATH=$(INTEROP_OUT)/prefix \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(INTEROP_OUT)/grpcpp-host -j2 --target grpcpp-host

lint-interop:
	$(PYTHON) -m ruff check $(INTEROP)
	$(PYTHON) -m ruff format --check $(INTEROP)
	cd $(INTEROP)/goclient && test -z "$$(gofmt -l .)" && go vet .

interop-goclient:
	cd $(INTEROP)/goclient && go build -o ../bin/goclient .

test-interop: interop-hosts interop-goclient
	@test -d $(INTEROP)/node/node_modules || { echo "$(INTEROP)/node/node_modules missing: run ci/install-80-interop.sh" >&2; exit 1; }
	$(PYTHON) -m pytest $(INTEROP)

interop:
	INTEROP_MATRIX=$(CURDIR)/docs/interop.md $(MAKE) --no-print-directory test-interop
