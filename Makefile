# Bitten: two commands for a newcomer.
#   make run   installs what is missing, builds, and starts the whole system (demo EAs included)
#   make test  installs what is missing, builds, and runs the whole test suite
SHELL := /bin/bash
SWIFT ?= swift
ARGS ?= --demo

.PHONY: run run-quiet test deps build bench fuzz fmt-lint fmt clean
FUZZ_SECONDS ?= 60

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

run: build
	$(SWIFT) run bitten up $(ARGS)

test: deps
	@scripts/install-deps.sh --browser || echo "could not install Chromium; the browser check will say it is skipped"
	$(SWIFT) build --build-tests
	scripts/test.sh

# Every benchmark in turn (make bench BENCHES="trade fire" for some); figures are printed, nothing is asserted.
BENCHES ?= transport lifecycle trade fire citadel dashboard
bench: deps
	$(SWIFT) build -c release
	@for b in $(BENCHES); do echo "== bitten-bench $$b"; .build/release/bitten-bench $$b || exit 1; done

# libFuzzer over every decoder, FUZZ_SECONDS each (make fuzz FUZZ_SECONDS=600).
fuzz: deps
	scripts/fuzz.sh $(FUZZ_SECONDS)

# The style check make test runs first, and the formatter that fixes most of what it finds.
fmt-lint:
	$(SWIFT) format lint --strict --recursive Sources Tests

fmt:
	$(SWIFT) format format --in-place --recursive Sources Tests

clean:
	rm -rf .build data
