# The two commands of the README, on a fresh Debian 12 machine:
#   make demo   installs what is missing, builds, runs `nxc bench --quick`
#               between two local worker processes
#   make test   installs what is missing, builds, runs the whole suite:
#               plain build (C tests and the Python module's pytest suite),
#               ASan+UBSan build, valgrind, fuzz corpus + 60 s
#
# Packages come from Debian (apt-get, as root or through sudo).

DEB_PACKAGES := build-essential cmake pkg-config libucx-dev ucx-utils \
                libcmocka-dev zlib1g-dev clang libclang-rt-14-dev valgrind \
                python3 python3-numpy python3-pytest iproute2 procps
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= 2
FUZZ_SECONDS ?= 60
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build demo test test-plain test-asan test-valgrind test-fuzz clean

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "== installing:" $$missing; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	$(BUILD)/tools/nxc bench --quick

test-plain: build
	cd $(BUILD) && ctest --output-on-failure --timeout 300

test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DNXC_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_ASAN) -j$(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure --timeout 300 -L 'unit|e2e|example|cli' -LE progress_thread

test-valgrind: build
	bash tests/valgrind.sh $(BUILD)

test-fuzz: deps
	sh fuzz/run.sh $(FUZZ_SECONDS)

test: test-plain test-asan test-valgrind test-fuzz
	@echo "== all suites passed"

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) build-fuzz
