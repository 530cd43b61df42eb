# The two commands a newcomer needs, and a few for developers. CMake does the
# building; this file only strings the steps together.
#
#   make demo    install what is missing, build, run the whole story
#   make test    install what is missing, build, run every test
#   make test-sanitize   the same tests against an ASan+UBSan build
#   make bench   build (RelWithDebInfo) and run the benchmarks in bench/, which
#                print figures and never fail on them; `make test` does not
#                run them (BENCH_ARGS="--iterations N" to change the length,
#                EVENTS_BENCH_ARGS="--rounds N" for the events benchmark,
#                PROXY_BENCH_ARGS="--scenarios passthrough --rounds N" for the
#                proxy against nginx and HAProxy)
#   make build / clean

BUILD      ?= build
SAN_BUILD  ?= build-sanitize
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=
BENCH_ARGS ?=
EVENTS_BENCH_ARGS ?=
PROXY_BENCH_ARGS ?=

.PHONY: all deps build demo test test-sanitize build-sanitize bench clean

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

# Configured explicitly, not through the CMakeCache.txt rule: figures from a
# tree someone reconfigured as Debug, or with STRANGLER_BENCH=OFF, would be
# meaningless or missing.
bench: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRANGLER_BENCH=ON
	cmake --build $(BUILD) -j $(JOBS)
	$(BUILD)/bench/adapter-bench $(BENCH_ARGS)
	python3 bench/events_bench.py --build $(BUILD) $(EVENTS_BENCH_ARGS)
	python3 bench/proxy_bench.py --build $(BUILD) $(PROXY_BENCH_ARGS)

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
