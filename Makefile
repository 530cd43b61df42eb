# The two commands a newcomer needs, and a few for developers. CMake does the
# building; this file only strings the steps together.
#
#   make demo    install what is missing, build, run the whole story
#   make test    install what is missing, build, run every test
#   make test-sanitize   the same tests against an ASan+UBSan build
#   make test-valgrind   every unit suite but publisher (it needs the broker
#                that ctest's rabbitmq fixture starts) under valgrind's leak
#                check, in-process (CK_FORK=no); definite and indirect leaks
#                and memory errors fail it, still-reachable memory does not
#   make bench   build (RelWithDebInfo) and run the benchmarks in bench/, which
#                print figures and never fail on them; `make test` does not
#                run them (BENCH_ARGS="--iterations N" to change the length,
#                EVENTS_BENCH_ARGS="--rounds N" for the events benchmark,
#                PROXY_BENCH_ARGS="--scenarios passthrough --rounds N" for the
#                proxy against nginx and HAProxy)
#   make fuzz    build the libFuzzer drivers of fuzz/ with clang in build-fuzz
#                and run each for FUZZ_SECONDS (default 60); never part of
#                `make test` (fuzz/README.md)
#   make build / clean

BUILD      ?= build
SAN_BUILD  ?= build-sanitize
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=
BENCH_ARGS ?=
EVENTS_BENCH_ARGS ?=
PROXY_BENCH_ARGS ?=
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= fuzz_xmlrpc_call fuzz_xmlrpc_response fuzz_json_to_xmlrpc fuzz_routes_conf \
                fuzz_http_request

.PHONY: all deps build demo test test-sanitize test-valgrind build-sanitize bench fuzz clean

all: build

deps:
	@./.ci/install-deps

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	python3 examples/demo.py --build $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

$(SAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSTRANGLER_SANITIZE=ON

build-sanitize: deps $(SAN_BUILD)/CMakeCache.txt
	cmake --build $(SAN_BUILD) -j $(JOBS)

test-sanitize: build-sanitize
	cd $(SAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# The suites, from the file names as tests/CMakeLists.txt finds them.
VALGRIND_SUITES ?= $(filter-out publisher,$(patsubst tests/unit/test_%.c,%,$(wildcard tests/unit/test_*.c)))
VALGRIND ?= valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect \
	    --error-exitcode=1

test-valgrind: build
	@failed=""; for s in $(VALGRIND_SUITES); do \
	    echo "== valgrind: unit suite $$s"; \
	    CK_FORK=no $(VALGRIND) $(BUILD)/tests/unit_tests $$s || failed="$$failed $$s"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-valgrind: failed:$$failed"; exit 1; fi; \
	echo "test-valgrind: all suites clean (publisher skipped: it needs the broker)"

# Configured explicitly, not through the CMakeCache.txt rule: figures from a
# tree someone reconfigured as Debug, or with STRANGLER_BENCH=OFF, would be
# meaningless or missing.
bench: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRANGLER_BENCH=ON
	cmake --build $(BUILD) -j $(JOBS)
	$(BUILD)/bench/adapter-bench $(BENCH_ARGS)
	python3 bench/events_bench.py --build $(BUILD) $(EVENTS_BENCH_ARGS)
	python3 bench/proxy_bench.py --build $(BUILD) $(PROXY_BENCH_ARGS)

# A build tree of its own: clang, and every library compiled for libFuzzer
# with ASan and UBSan (STRANGLER_FUZZ in CMakeLists.txt).
fuzz:
	@./.ci/install-deps fuzz/packages
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DSTRANGLER_FUZZ=ON -DSTRANGLER_TESTS=OFF -DSTRANGLER_EXAMPLES=OFF -DSTRANGLER_BENCH=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	./fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
