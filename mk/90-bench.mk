# Side-by-side benchmarks: dubbo-health against stock tonic-health, grpc-go and grpc C++ health
# services (tests/bench, load generator in tests/loadgen). Results go to docs/bench.md + .png.
#   make bench-quick   reduced sizes, one repeat (< 2 min), for development
#   make bench         the full run (≥ 3 repeats, 10k/50k/100k/200k watchers, probe churn, the
#                      mounted comparison), part of `make bench`

BENCH_DIR := $(CARGO_TARGET_DIR)/bench
BENCH_RELEASE := $(CARGO_TARGET_DIR)/release
BENCH_SERVERS = \
	--server 'dubbo-health=$(BENCH_RELEASE)/dubbo-health serve --addr 127.0.0.1:0 --control-stdin' \
	--server 'tonic-health=$(BENCH_RELEASE)/tonic-health-anchor --addr 127.0.0.1:0' \
	--server 'dubbo-health mounted=$(BENCH_RELEASE)/tonic-health-anchor --addr 127.0.0.1:0 --mount dubbo-health' \
	--server 'grpc-go=$(BENCH_DIR)/grpc-go-anchor --addr 127.0.0.1:0' \
	--server 'grpc-c++=$(BENCH_DIR)/grpcpp/grpcpp-anchor --addr 127.0.0.1:0'

BENCH_TARGETS += bench-servers
TEST_TARGETS += test-loadgen-smoke
LINT_TARGETS += lint-bench

.PHONY: bench-build bench-servers bench-quick test-loadgen-smoke lint-bench

lint-bench:
	$(PYTHON) -m ruff check tests/bench
	$(PYTHON) -m ruff format --check tests/bench

bench-build:
	$(CARGO) build --release --locked -p dubbo-health-loadgen -p dubbo-health-cli
	mkdir -p $(BENCH_DIR)
	cd tests/bench/grpc-go-anchor && go build -o $(BENCH_DIR)/grpc-go-anchor .
	cmake -S tests/bench/grpcpp-anchor -B $(BENCH_DIR)/grpcpp -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BENCH_DIR)/grpcpp -j2 >/dev/null

# Raise the open-file limit as far as the hard limit allows: 100k watchers use 1,000 connections.
bench-servers: bench-build
	ulimit -n $$(ulimit -Hn); $(PYTHON) tests/bench/bench.py --loadgen $(BENCH_RELEASE)/dh-loadgen \
		$(BENCH_SERVERS) --md docs/bench.md --png docs/bench.png --json $(BENCH_DIR)/results.json

bench-quick: bench-build
	ulimit -n $$(ulimit -Hn); $(PYTHON) tests/bench/bench.py --quick --loadgen $(BENCH_RELEASE)/dh-loadgen \
		$(BENCH_SERVERS) --md docs/bench.md --png docs/bench.png --json $(BENCH_DIR)/results-quick.json

# A few seconds: the load generator drives our server (Check, List, a small Watch fan-out).
test-loadgen-smoke:
	$(CARGO) build --locked -p dubbo-health-loadgen -p dubbo-health-cli
	ulimit -n $$(ulimit -Hn); bash tests/bench/smoke.sh $(CARGO_TARGET_DIR)/debug/dh-loadgen $(CARGO_TARGET_DIR)/debug/dubbo-health
