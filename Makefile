# Bitten: two commands for a newcomer.
#   make run   installs what is missing, builds, and starts the whole system (demo EAs included)
#   make test  installs what is missing, builds, and runs the whole test suite
SHELL := /bin/bash
SWIFT ?= swift
ARGS ?= --demo

.PHONY: run run-quiet test deps build bench fuzz fmt-lint fmt openapi clean
FUZZ_SECONDS ?= 60

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

run: build
	$(SWIFT) run bitten up $(ARGS)

test: deps
	@scripts/install-deps.sh --browser || echo "could not install Chromium; the browser check will say it is skipped"
	@scripts/install-deps.sh --fuzzer || echo "could not install schemathesis; the API fuzz check will fail"
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

# The style check make test runs first, and the formatter that fixes most of what it finds (generated code is
# left as the generator wrote it).
SWIFT_FILES = $$(find Sources Tests -name '*.swift' -not -path '*/Generated/*')
fmt-lint:
	$(SWIFT) format lint --strict $(SWIFT_FILES)

fmt:
	$(SWIFT) format format --in-place $(SWIFT_FILES)

# The HTTP API's server interface from its one description (Sources/BittenDashboard/Resources/openapi.yaml).
# The generated code is committed, so builds and CI never build the generator; run this after changing the file.
# The copy in Tools/openapi tells the tests which document the committed code was generated from.
OPENAPI = Sources/BittenDashboard
openapi:
	$(SWIFT) build -c release --package-path Tools/openapi --product swift-openapi-generator
	rm -rf $(OPENAPI)/Generated
	Tools/openapi/.build/release/swift-openapi-generator generate $(OPENAPI)/Resources/openapi.yaml \
		--config $(OPENAPI)/openapi-generator-config.yaml --output-directory $(OPENAPI)/Generated
	cp $(OPENAPI)/Resources/openapi.yaml Tools/openapi/generated-from.yaml

clean:
	rm -rf .build data
