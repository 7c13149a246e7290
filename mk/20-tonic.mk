# tonic adapter, standalone server and the dubbo-health CLI (tonic-adapter/), checked against
# real peers: grpc-health-probe and grpc-go (tests/go/). Its Rust tests run in test-rust.

TEST_TARGETS += test-tonic

.PHONY: test-tonic build-tonic demo

DUBBO_HEALTH_BIN := $(CARGO_TARGET_DIR)/debug/dubbo-health
GREETER_HOST_BIN := $(CARGO_TARGET_DIR)/debug/examples/greeter_host
GREETER := org.apache.dubbogo.samples.api.Greeter

build-tonic:
	$(CARGO) build -p dubbo-health-cli --locked --bin dubbo-health --example greeter_host

# grpc-go Check/Watch/List and client-side health checking, grpc-health-probe exit codes
# (and `dubbo-health check` giving the same ones), the greeter_host example. A missing
# grpc-health-probe or Go toolchain fails here.
test-tonic: build-tonic
	command -v grpc-health-probe >/dev/null || { echo "grpc-health-probe missing: run ci/install-20-tonic.sh" >&2; exit 1; }
	cd tests/go && DUBBO_HEALTH_BIN=$(DUBBO_HEALTH_BIN) GREETER_HOST_BIN=$(GREETER_HOST_BIN) \
		go test -count=1 -timeout 300s -v ./...

# The README's first command: a health server on 127.0.0.1:20000 to probe by hand. It needs
# nothing but a Rust toolchain (make test-demo checks that).
DEMO_ADDR ?= 127.0.0.1:20000
demo:
	$(CARGO) build -p dubbo-health-cli --bin dubbo-health
	@echo
	@echo "dubbo-health is serving grpc.health.v1.Health on $(DEMO_ADDR) (\"\" and $(GREETER) SERVING)."
	@echo "Try, in another terminal:"
	@echo "    grpc-health-probe -addr=$(DEMO_ADDR) -service $(GREETER)"
	@echo "    $(DUBBO_HEALTH_BIN) check -addr=$(DEMO_ADDR) -service $(GREETER)"
	@echo "    $(DUBBO_HEALTH_BIN) watch --addr $(DEMO_ADDR) --service $(GREETER)"
	@echo "Type here: set $(GREETER) NOT_SERVING | toggle NAME | clear NAME | shutdown | resume  (Ctrl-C drains and stops)"
	@echo
	$(DUBBO_HEALTH_BIN) serve --addr $(DEMO_ADDR) --set '""=SERVING' --set $(GREETER)=SERVING --control-stdin
