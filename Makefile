# Convenience targets around the CMake build. CMake does the real work; this file installs any
# missing tools, picks the build directories and runs the steps in order.

# CMake's generated Makefiles are sub-makes of this one: no "Entering directory" lines from them.
MAKEFLAGS += --no-print-directory

RELEASE_DIR := build/release
TEST_DIR    := build/debug
BENCH_DIR   := build/bench
STRESS_DIR  := build/stress
STRESS_TARGETS := $(basename $(notdir $(wildcard tests/stress/*_stress.c)))
PREFIX      ?= /usr/local
JOBS        := $(shell nproc 2>/dev/null || echo 2)
SUDO        := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# What each target needs, as kind:what:package. The package is installed only when the check
# fails: cmd = a program on PATH, file = a file that exists, pc = a pkg-config module, deb = an
# installed Debian package.
# libssl-dev (OpenSSL) is for the optional TLS layer, async_socket_tls, which CMake builds when
# it finds OpenSSL.
BUILD_NEEDS := cmd:gcc:gcc cmd:cmake:cmake cmd:pkg-config:pkg-config cmd:make:make pc:openssl:libssl-dev \
               file:/usr/include/stdio.h:libc6-dev
# libuv is only a benchmark dependency; with it present the test build also compiles bench/ (not run).
# iproute2's ip sets up the veth pair of async_socket_netns_int (skipped where namespaces are not allowed).
TEST_NEEDS  := $(BUILD_NEEDS) pc:cmocka:libcmocka-dev cmd:python3:python3 pc:libuv:libuv1-dev cmd:ip:iproute2 cmd:openssl:openssl
BENCH_NEEDS := $(BUILD_NEEDS) pc:libuv:libuv1-dev cmd:strace:strace cmd:python3:python3
# libFuzzer is in clang's compiler-rt (libclang-rt-14-dev).
FUZZ_NEEDS  := $(BUILD_NEEDS) cmd:clang:clang deb:libclang-rt-14-dev:libclang-rt-14-dev
FUZZ_DIR    := build/fuzz
FUZZ_SECONDS ?= 300
# make check: gcc's sanitizers come with gcc; clang and libclang-rt-14-dev (libFuzzer) for the
# fuzz step, valgrind for memcheck.
CHECK_NEEDS := $(TEST_NEEDS) cmd:clang:clang cmd:valgrind:valgrind deb:libclang-rt-14-dev:libclang-rt-14-dev
# The consumer builds also compile C++ and inspect the programs they link; the TLS consumer makes
# its certificate with the openssl command.
CONSUMER_NEEDS := $(BUILD_NEEDS) cmd:g++:g++ cmd:readelf:binutils cmd:openssl:openssl

# $(call install_missing,needs): apt-get install the packages whose check fails (update first).
define install_missing
	@missing=""; \
	for need in $(1); do \
		kind=$${need%%:*}; rest=$${need#*:}; what=$${rest%:*}; package=$${rest##*:}; \
		case $$kind in \
			cmd)  command -v "$$what" >/dev/null 2>&1 ;; \
			file) test -e "$$what" ;; \
			pc)   pkg-config --exists "$$what" 2>/dev/null ;; \
			deb)  dpkg -s "$$what" >/dev/null 2>&1 ;; \
		esac || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ] && [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null 2>&1; then \
		echo "missing:$$missing" >&2; \
		echo "make: not root and no sudo, so these cannot be installed here; as root run:" >&2; \
		echo "    apt-get update && apt-get install -y --no-install-recommends$$missing" >&2; \
		echo "then run make again (or install them another way)" >&2; \
		exit 1; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
endef

# `make run` load: RUN_CONNS connections, RUN_SIZE-byte messages, RUN_SECONDS seconds.
RUN_CONNS   ?= 4
RUN_SIZE    ?= 64
RUN_SECONDS ?= 3

.PHONY: run run-tls quiet-release demo test check bench stress fuzz release install consumer clean

# Build the optimised library and tools, start asock-echo on a free loopback port, run asock-load
# against it and print its table; fails when either tool reports an error.
run: quiet-release
	@sh tools/run_echo_load.sh $(RELEASE_DIR) --conns $(RUN_CONNS) --size $(RUN_SIZE) --seconds $(RUN_SECONDS)

# `make run` over TLS: asock-echo --tls-cert/--tls-key with a certificate made for the run,
# asock-load --tls verifying it (tools/run_echo_load_tls.sh; needs the openssl command).
run-tls: quiet-release
	$(call install_missing,cmd:openssl:openssl)
	@sh tools/run_echo_load_tls.sh $(RELEASE_DIR) --conns $(RUN_CONNS) --size $(RUN_SIZE) --seconds $(RUN_SECONDS)

# The older two-socket demo: a ping-pong phase, then a streaming phase (MB/s).
demo: release
	./$(RELEASE_DIR)/async_socket_demo

# `make run` builds quietly: the configure and compile output goes to $(RELEASE_DIR).log, shown
# only when the build fails, so the run's table is what the terminal shows.
quiet-release:
	$(call install_missing,$(BUILD_NEEDS))
	@echo "building $(RELEASE_DIR) (Release; output in $(RELEASE_DIR).log)"
	@mkdir -p build
	@{ cmake -S . -B $(RELEASE_DIR) -DCMAKE_BUILD_TYPE=Release -DASYNC_SOCKET_TESTS=OFF && \
	   cmake --build $(RELEASE_DIR) -j $(JOBS); } >$(RELEASE_DIR).log 2>&1 || \
	 { cat $(RELEASE_DIR).log; echo "build failed: see $(RELEASE_DIR).log"; exit 1; }

# Configure and build the Release tree (library, tools, demo; no tests).
release:
	$(call install_missing,$(BUILD_NEEDS))
	cmake -S . -B $(RELEASE_DIR) -DCMAKE_BUILD_TYPE=Release -DASYNC_SOCKET_TESTS=OFF
	cmake --build $(RELEASE_DIR) -j $(JOBS)

# Build with tests and run every test case (unit, integration, traceability) under ctest.
test:
	$(call install_missing,$(TEST_NEEDS))
	cmake -S . -B $(TEST_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASYNC_SOCKET_TESTS=ON
	cmake --build $(TEST_DIR) -j $(JOBS)
	cd $(TEST_DIR) && ctest --output-on-failure --no-tests=error -j2

# The reliability checks (tests/check/run_check.sh): asan (the whole suite under ASan+UBSan,
# stress included at a reduced scale), tsan (integration and stress tests under TSan), valgrind
# (integration tests under memcheck, leaks are errors), faults (the fault sweep and its counts),
# fuzz (make fuzz for CHECK_FUZZ_SECONDS) and stress (make stress), in that order. Each step prints
# its figures and duration; any failure fails the run. Pick steps with CHECK_STEPS="asan faults".
CHECK_STEPS        ?= asan tsan valgrind faults fuzz stress
CHECK_FUZZ_SECONDS ?= 60
check:
	$(call install_missing,$(CHECK_NEEDS))
	MAKE="$(MAKE)" FUZZ_SECONDS="$(CHECK_FUZZ_SECONDS)" sh tests/check/run_check.sh $(CHECK_STEPS)

# Benchmark: this library vs a hand-written epoll loop vs libuv, interleaved rounds, medians and
# ratios against the targets (bench/run_bench.py; BENCH_ROUNDS, BENCH_DURATION_MS tune it). The
# table is printed and written to $(BENCH_DIR)/results.md.
bench:
	$(call install_missing,$(BENCH_NEEDS))
	cmake -S . -B $(BENCH_DIR) -DCMAKE_BUILD_TYPE=Release -DASYNC_SOCKET_TESTS=OFF -DASYNC_SOCKET_BENCH=ON
	cmake --build $(BENCH_DIR) -j $(JOBS)
	python3 bench/run_bench.py $(BENCH_DIR)

# Fuzz: the libFuzzer target of tests/fuzz (clang, ASan+UBSan) for FUZZ_SECONDS (default 300) on
# a copy of tests/fuzz/corpus in $(FUZZ_DIR)/corpus; prints "fuzz: N executions in S s, 0 crashes"
# and fails on a crash (the input is left in $(FUZZ_DIR)/artifacts/).
fuzz:
	$(call install_missing,$(FUZZ_NEEDS))
	CC=clang cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASYNC_SOCKET_TESTS=OFF \
		-DASYNC_SOCKET_FUZZ=ON -DASYNC_SOCKET_SANITIZE=address,undefined
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target async_socket_fuzz
	tests/fuzz/run_fuzz.sh $(FUZZ_DIR)/tests/fuzz/async_socket_fuzz $(FUZZ_SECONDS) $(FUZZ_DIR)

# Stress (tests/stress): 10,000 echoing connections, 100,000 open/close cycles, 8 threads on shared
# sockets, closes from callbacks, peers resetting under load; bounded, about a minute in all. ASYNC_SOCKET_STRESS_SCALE (percent
# of the full counts, default 100) scales them. Each test's figures line (STRESS: ...) is collected
# in $(STRESS_DIR)/stress.log and printed at the end. Optimised, with the invariant checks on
# (ASYNC_SOCKET_ASSERTS, off by default in Release).
stress:
	$(call install_missing,$(TEST_NEEDS))
	cmake -S . -B $(STRESS_DIR) -DCMAKE_BUILD_TYPE=Release -DASYNC_SOCKET_TESTS=ON -DASYNC_SOCKET_STRESS=ON -DASYNC_SOCKET_ASSERTS=ON
	cmake --build $(STRESS_DIR) -j $(JOBS) --target $(STRESS_TARGETS)
	rm -f $(STRESS_DIR)/stress.log
	cd $(STRESS_DIR) && ASYNC_SOCKET_STRESS_LOG=$(CURDIR)/$(STRESS_DIR)/stress.log \
		ctest -L stress --output-on-failure --no-tests=error; status=$$?; \
		cat $(CURDIR)/$(STRESS_DIR)/stress.log 2>/dev/null; exit $$status

# Install headers, libraries, pkg-config file, CMake package and the asock-echo / asock-load
# tools (in PREFIX/bin) under PREFIX (default /usr/local).
install: release
	cmake --install $(RELEASE_DIR) --prefix "$(PREFIX)"

# Try the installed package as users reach it: install build/release into a temporary prefix, then
# build and run tests/consumer/consumer.c through pkg-config (shared and --static) and through
# find_package(async_socket CONFIG), also from a moved copy of the tree, compile every public header
# as C11 and as C++17, and check the archive's exports; the same for the TLS layer
# (tests/consumer/tls_consumer.c) when it was built. One line per case; non-zero exit when any
# fails.
consumer: release
	$(call install_missing,$(CONSUMER_NEEDS))
	tests/consumer/run_consumer.sh $(RELEASE_DIR)

# Remove every build tree.
clean:
	rm -rf build
