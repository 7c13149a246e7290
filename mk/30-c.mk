# C ABI (c-api/): generated header, C tests under ASan/UBSan and valgrind, fuzzing,
# `make install`, and the grpc++ host example.
#
#   make c-header              regenerate c-api/include/dubbo_health.h (cbindgen, pinned)
#   make install PREFIX=/usr/local   header, stripped libdubbo_health.{so,a} (+ lib/.debug),
#                              pkg-config (dubbo-health, dubbo-health-static), CMake package
#   make test-c                C tests (ASan + UBSan + LeakSanitizer, static library)
#   make test-c-tsan           the same under ThreadSanitizer, Rust std included

TEST_TARGETS += test-c-header test-c test-c-valgrind test-c-tsan test-c-grpcpp test-c-fuzz

PREFIX ?= /usr/local
CBINDGEN_VERSION := 0.29.4
C_DIR := c-api
C_HEADER := $(C_DIR)/include/dubbo_health.h
C_OUT := $(CARGO_TARGET_DIR)/c-api
C_DEBUG_LIB := $(CARGO_TARGET_DIR)/debug/libdubbo_health.a
C_RELEASE_DIR := $(CARGO_TARGET_DIR)/release
C_TESTS := $(sort $(basename $(notdir $(wildcard $(C_DIR)/tests/test_*.c))))
C_WARN := -std=c99 -Wall -Wextra -Wpedantic -Werror
C_NATIVE_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl
C_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
# The example host links the installed package from here.
C_TEST_PREFIX := $(C_OUT)/prefix

.PHONY: c-header c-lib-debug c-lib-release install install-c test-c-header test-c test-c-valgrind \
	test-c-tsan test-c-grpcpp test-c-fuzz

install: install-c

c-header:
	cbindgen --version | grep -qx 'cbindgen $(CBINDGEN_VERSION)'
	cd $(C_DIR) && cbindgen --quiet --config cbindgen.toml --crate dubbo-health-c --output include/dubbo_health.h

c-lib-debug:
	$(CARGO) build -p dubbo-health-c --locked

c-lib-release:
	$(CARGO) build -p dubbo-health-c --locked --release

# The checked-in header must be what cbindgen makes of the current source, its version
# macros must match Cargo.toml, and it must compile as strict C99 and as C++17.
test-c-header:
	@mkdir -p $(C_OUT)
	cbindgen --version | grep -qx 'cbindgen $(CBINDGEN_VERSION)'
	cd $(C_DIR) && cbindgen --quiet --config cbindgen.toml --crate dubbo-health-c --output $(C_OUT)/fresh.h
	diff -u $(C_HEADER) $(C_OUT)/fresh.h || { echo "$(C_HEADER) is stale: run 'make c-header' and commit it"; exit 1; }
	grep -qx '#define DH_VERSION "$(C_VERSION)"' $(C_HEADER) || { echo "DH_VERSION in $(C_HEADER) is not $(C_VERSION): update cbindgen.toml"; exit 1; }
	grep -qx '#define DH_VERSION_MAJOR $(word 1,$(subst ., ,$(C_VERSION)))' $(C_HEADER)
	grep -qx '#define DH_VERSION_MINOR $(word 2,$(subst ., ,$(C_VERSION)))' $(C_HEADER)
	grep -qx '#define DH_VERSION_PATCH $(word 3,$(subst ., ,$(C_VERSION)))' $(C_HEADER)
	printf '#include "dubbo_health.h"\nint main(void) { return dh_version() == 0; }\n' > $(C_OUT)/header_c99.c
	cc $(C_WARN) -I$(C_DIR)/include -c $(C_OUT)/header_c99.c -o $(C_OUT)/header_c99.o
	printf '#define DH_DEBUG_HOOKS 1\n#include "dubbo_health.h"\nint main() { return dh_version() == nullptr; }\n' > $(C_OUT)/header_cxx17.cpp
	c++ -std=c++17 -Wall -Wextra -Wpedantic -Werror -I$(C_DIR)/include -c $(C_OUT)/header_cxx17.cpp -o $(C_OUT)/header_cxx17.o
	@echo "test-c-header: header is current and compiles as C99 and C++17"

# Every C test, built with ASan + UBSan (LeakSanitizer included) against the debug static
# library, which also has the dh_debug_panic hook.
test-c: c-lib-debug
	@# The build without the server feature (what the fuzz target links): dh_server_* say DH_UNSUPPORTED.
	$(CARGO) test -p dubbo-health-c --no-default-features --lib --locked
	@mkdir -p $(C_OUT)/asan
	set -e; for t in $(C_TESTS); do \
		cc $(C_WARN) -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
			-I$(C_DIR)/include -I$(C_DIR)/tests $(C_DIR)/tests/$$t.c $(C_DEBUG_LIB) $(C_NATIVE_LIBS) -o $(C_OUT)/asan/$$t; \
		nm $(C_OUT)/asan/$$t | grep -c __asan_init >/dev/null || { echo "$$t: ASan is not linked"; exit 1; }; \
	done
	@# LeakSanitizer is really on: a program that leaks must fail under the same flags.
	printf '#include <stdlib.h>\nvoid *keep;\nint main(void) { keep = malloc(64); keep = 0; return 0; }\n' > $(C_OUT)/asan/leak.c
	cc -g -fsanitize=address,undefined $(C_OUT)/asan/leak.c -o $(C_OUT)/asan/leak
	if ASAN_OPTIONS=detect_leaks=1 $(C_OUT)/asan/leak 2>/dev/null; then echo "LeakSanitizer did not report a leak"; exit 1; fi
	set -e; passed=0; for t in $(C_TESTS); do \
		echo "::: $$t (ASan+UBSan+LSan)"; \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			timeout 120 $(C_OUT)/asan/$$t; passed=$$((passed+1)); \
	done; echo "test-c: $$passed passed, 0 failed"

# The same tests once more under valgrind (no sanitizers); any error fails.
test-c-valgrind: c-lib-debug
	@mkdir -p $(C_OUT)/plain
	set -e; for t in $(C_TESTS); do \
		cc $(C_WARN) -g -O0 -I$(C_DIR)/include -I$(C_DIR)/tests $(C_DIR)/tests/$$t.c $(C_DEBUG_LIB) $(C_NATIVE_LIBS) -o $(C_OUT)/plain/$$t; \
	done
	set -e; for t in $(C_TESTS); do \
		echo "::: $$t (valgrind)"; \
		DH_TEST_SLOW=1 DH_TEST_VALGRIND=1 timeout 600 valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
			--show-leak-kinds=definite $(C_OUT)/plain/$$t; \
	done

# ThreadSanitizer over both sides: the library (and the Rust standard library, rebuilt with
# -Zbuild-std) is instrumented by nightly rustc, the tests by cc -fsanitize=thread, and both
# link the LLVM TSan runtime that ships with that nightly (the C compiler's own libtsan may
# be older than what rustc emits). Without the `server` feature, so test_server is left
# out (its tonic/tokio stack would triple the build); every other C test runs.
C_TSAN_TARGET := $(shell rustc -vV | sed -n 's/^host: //p')
C_TSAN_BUILD := $(CARGO_TARGET_DIR)/tsan
C_TSAN_LIB := $(C_TSAN_BUILD)/$(C_TSAN_TARGET)/debug/libdubbo_health.a
C_TSAN_RT = $(shell rustc +nightly --print sysroot)/lib/rustlib/$(C_TSAN_TARGET)/lib/librustc-nightly_rt.tsan.a
C_TSAN_TESTS := $(filter-out test_server%,$(C_TESTS))
C_TSAN_LINK = -Wl,--whole-archive $(C_TSAN_RT) -Wl,--no-whole-archive $(C_NATIVE_LIBS) -lstdc++
test-c-tsan:
	RUSTFLAGS=-Zsanitizer=thread CARGO_TARGET_DIR=$(C_TSAN_BUILD) $(CARGO) +nightly build -Zbuild-std \
		--target $(C_TSAN_TARGET) -p dubbo-health-c --no-default-features --locked
	@mkdir -p $(C_OUT)/tsan
	test -f $(C_TSAN_RT)
	set -e; for t in $(C_TSAN_TESTS); do \
		cc $(C_WARN) -g -O1 -fsanitize=thread -I$(C_DIR)/include -I$(C_DIR)/tests -c $(C_DIR)/tests/$$t.c -o $(C_OUT)/tsan/$$t.o; \
		cc $(C_OUT)/tsan/$$t.o $(C_TSAN_LIB) $(C_TSAN_LINK) -o $(C_OUT)/tsan/$$t; \
	done
	@# ThreadSanitizer is really on: a program with a data race must fail under the same flags.
	printf '#include <pthread.h>\nint n;\nvoid *add(void *p) { n++; return p; }\nint main(void) { pthread_t t; pthread_create(&t, 0, add, 0); n++; pthread_join(t, 0); return 0; }\n' > $(C_OUT)/tsan/race.c
	cc -g -fsanitize=thread -c $(C_OUT)/tsan/race.c -o $(C_OUT)/tsan/race.o && cc $(C_OUT)/tsan/race.o $(C_TSAN_LINK) -o $(C_OUT)/tsan/race
	if TSAN_OPTIONS=halt_on_error=1 $(C_OUT)/tsan/race 2>/dev/null; then echo "ThreadSanitizer did not report a race"; exit 1; fi
	set -e; passed=0; for t in $(C_TSAN_TESTS); do \
		echo "::: $$t (ThreadSanitizer)"; \
		DH_TEST_SLOW=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 timeout 300 $(C_OUT)/tsan/$$t; passed=$$((passed+1)); \
	done; echo "test-c-tsan: $$passed passed, 0 failed (test_server* need the server feature: not built here)"

# The libraries go in stripped: the shared library's debug info moves to
# lib/.debug/libdubbo_health.so.VERSION.debug (gdb finds it through the library's
# .gnu_debuglink), the static library loses its debug info. C_STRIP=0 installs them as built.
# dubbo-health.pc links the shared library (with an rpath to a prefix the loader does not
# search), dubbo-health-static.pc the static one. C_PC_RELOCATABLE=1 (the tarball of make dist)
# has the .pc files find the prefix from their own place and always set the rpath.
C_STRIP ?= 1
C_PC_RELOCATABLE ?= 0
C_SYSTEM_PREFIXES := /usr /usr/local
OBJCOPY ?= objcopy
STRIP ?= strip
comma := ,
C_PC_PREFIX = $(if $(filter 1,$(C_PC_RELOCATABLE)),$${pcfiledir}/../..,$(PREFIX))
C_PC_RPATH = $(if $(filter 1,$(C_PC_RELOCATABLE))$(filter-out $(C_SYSTEM_PREFIXES),$(PREFIX)),-Wl$(comma)-rpath$(comma)$${libdir})
C_SO := libdubbo_health.so.$(C_VERSION)
C_LIBDIR = $(DESTDIR)$(PREFIX)/lib
install-c: c-lib-release
	install -d $(DESTDIR)$(PREFIX)/include $(C_LIBDIR)/pkgconfig $(C_LIBDIR)/cmake/DubboHealth \
		$(DESTDIR)$(PREFIX)/share/doc/dubbo-health
	install -m 644 $(C_HEADER) $(DESTDIR)$(PREFIX)/include/dubbo_health.h
	install -m 644 $(C_RELEASE_DIR)/libdubbo_health.a $(C_LIBDIR)/libdubbo_health.a
	install -m 755 $(C_RELEASE_DIR)/libdubbo_health.so $(C_LIBDIR)/$(C_SO)
ifeq ($(C_STRIP),1)
	install -d $(C_LIBDIR)/.debug
	$(OBJCOPY) --only-keep-debug --compress-debug-sections=zlib $(C_LIBDIR)/$(C_SO) $(C_LIBDIR)/.debug/$(C_SO).debug
	chmod 644 $(C_LIBDIR)/.debug/$(C_SO).debug
	cd $(C_LIBDIR) && $(OBJCOPY) --strip-unneeded --add-gnu-debuglink=.debug/$(C_SO).debug $(C_SO)
	$(STRIP) --strip-debug $(C_LIBDIR)/libdubbo_health.a
endif
	ln -sf $(C_SO) $(C_LIBDIR)/libdubbo_health.so.$(word 1,$(subst ., ,$(C_VERSION)))
	ln -sf $(C_SO) $(C_LIBDIR)/libdubbo_health.so
	set -e; for pc in dubbo-health dubbo-health-static; do \
		sed -e 's|@PREFIX@|$(C_PC_PREFIX)|g' -e 's|@VERSION@|$(C_VERSION)|g' -e 's|@LIBS_PRIVATE@|$(C_NATIVE_LIBS)|g' \
			-e 's|@RPATH@|$(C_PC_RPATH)|g' $(C_DIR)/dist/$$pc.pc.in > $(C_LIBDIR)/pkgconfig/$$pc.pc; \
	done
	sed -e 's|@VERSION@|$(C_VERSION)|g' $(C_DIR)/dist/DubboHealthConfigVersion.cmake.in \
		> $(C_LIBDIR)/cmake/DubboHealth/DubboHealthConfigVersion.cmake
	install -m 644 $(C_DIR)/dist/DubboHealthConfig.cmake $(C_LIBDIR)/cmake/DubboHealth/DubboHealthConfig.cmake
	install -m 644 LICENSE $(C_DIR)/README.md $(DESTDIR)$(PREFIX)/share/doc/dubbo-health/
	@echo "installed dubbo-health $(C_VERSION) C library into $(DESTDIR)$(PREFIX)"

# The grpc++ example host, built with CMake against `make install` output, probed by
# grpc-health-probe and watched by a GenericStub client.
C_HOST_BUILD := $(C_OUT)/grpcpp-host
test-c-grpcpp:
	rm -rf $(C_TEST_PREFIX)
	$(MAKE) --no-print-directory install-c PREFIX=$(C_TEST_PREFIX)
	@# The shared library exports exactly the functions the header declares (the debug hook aside).
	sed -nE 's/^(dh_result|void|const char \*) *(dh_[a-z_]+)\(.*/\2/p' $(C_HEADER) | grep -v '^dh_debug_panic$$' | sort > $(C_OUT)/header-symbols.txt
	nm -D --defined-only $(C_TEST_PREFIX)/lib/libdubbo_health.so | awk '{print $$3}' | sort > $(C_OUT)/so-symbols.txt
	diff -u $(C_OUT)/header-symbols.txt $(C_OUT)/so-symbols.txt
	test "$$(wc -l < $(C_OUT)/so-symbols.txt)" -ge 30
	@# pkg-config: a C program built from the .pc flags alone, against the shared and the static library
	printf '#include <dubbo_health.h>\n#include <string.h>\nint main(void) { dh_registry *r; if (dh_registry_new(&r)) return 1; dh_registry_free(r); return strcmp(dh_version(), DH_VERSION) != 0; }\n' > $(C_OUT)/pc_smoke.c
	@# (the prefix is not a system one: the .pc gives the binary its rpath, nothing else is needed)
	cc $(C_WARN) $(C_OUT)/pc_smoke.c $$(PKG_CONFIG_PATH=$(C_TEST_PREFIX)/lib/pkgconfig pkg-config --cflags --libs dubbo-health) \
		-o $(C_OUT)/pc_smoke_shared && $(C_OUT)/pc_smoke_shared
	readelf -d $(C_OUT)/pc_smoke_shared | grep -q 'NEEDED.*libdubbo_health\.so\.0'
	cc $(C_WARN) $(C_OUT)/pc_smoke.c $$(PKG_CONFIG_PATH=$(C_TEST_PREFIX)/lib/pkgconfig pkg-config --static --cflags --libs dubbo-health-static) \
		-o $(C_OUT)/pc_smoke_static && $(C_OUT)/pc_smoke_static
	! readelf -d $(C_OUT)/pc_smoke_static | grep -q 'NEEDED.*libdubbo_health'
	@# A build dir configured from another checkout cannot be reused.
	grep -qx 'CMAKE_HOME_DIRECTORY:INTERNAL=$(CURDIR)/$(C_DIR)/examples/grpcpp-host' $(C_HOST_BUILD)/CMakeCache.txt 2>/dev/null || \
		rm -rf $(C_HOST_BUILD)
	cmake -S $(C_DIR)/examples/grpcpp-host -B $(C_HOST_BUILD) -DCMAKE_PREFIX_PATH=$(C_TEST_PREFIX) \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(C_HOST_BUILD) -j2
	$(C_HOST_BUILD)/static-smoke
	timeout 300 $(C_DIR)/examples/grpcpp-host/test.sh $(C_HOST_BUILD)

# libFuzzer (cargo fuzz, nightly, ASan) over dh_handle_check / dh_handle_list /
# dh_watch_from_request and the request decoder, for a bounded time. The corpus and any
# crash artifacts go under target/, never into the source tree.
C_FUZZ_SECONDS ?= 60
test-c-fuzz:
	@mkdir -p $(C_OUT)/fuzz-corpus $(C_OUT)/fuzz-artifacts
	cd $(C_DIR)/fuzz && $(CARGO) +nightly fuzz run handle_check $(C_OUT)/fuzz-corpus seeds/handle_check -- \
		-max_total_time=$(C_FUZZ_SECONDS) -rss_limit_mb=2048 -artifact_prefix=$(C_OUT)/fuzz-artifacts/ \
		-print_final_stats=1 2>&1 | tee $(C_OUT)/fuzz.log | grep -E '^(#[0-9]+.*(INITED|DONE)|Done|stat::number_of_executed_units|==[0-9]+==|thread .* panicked)'
	@echo "test-c-fuzz: $$(sed -n 's/^stat::number_of_executed_units: *//p' $(C_OUT)/fuzz.log) executions in $(C_FUZZ_SECONDS) s, no crash"
