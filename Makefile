# RFM Playground — the two commands for a fresh machine:
#   make serve   build the site and serve it on http://127.0.0.1:8080 (installs what's missing)
#   make test    run every test suite (what CI runs, via .ci/run)
# Other targets are steps of those two.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV := source scripts/env.sh &&
WASM_TARGET := wasm32-unknown-unknown

.PHONY: serve test setup build test-native test-wasm test-web test-e2e check fmt lint soak

serve: setup
	@echo "Serving the playground at http://127.0.0.1:8080 (first build of the wasm core takes ~10-15 min on 2 cores)"
	$(ENV) trunk serve --release

build: setup
	$(ENV) trunk build --release

test: setup
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory test-native test-web build test-wasm test-e2e; \
	echo "all test suites passed in $$(( $$(date +%s) - start ))s"

setup:
	@scripts/setup.sh

test-native:
	$(ENV) cargo test -p rfm-playground

test-wasm:
	$(ENV) cargo test --profile wasm -p rfm-playground --target $(WASM_TARGET) --test web

test-web:
	cd web && npm run --silent check && npm test
	cd tests && npx tsc --noEmit -p .

# Browser tests against dist/ (make build first): Chromium and Firefox ESR, about 10 minutes here.
test-e2e:
	$(ENV) cd tests && start=$$(date +%s) && npm test && echo "e2e tests passed in $$(( $$(date +%s) - start ))s"

# Opt-in, not part of `make test`: train for SOAK_MINUTES (default 60) in headless Chromium,
# sampling memory every minute (tests/e2e/soak.ts; docs/reliability.md).
soak: build
	$(ENV) cd tests && node --import tsx e2e/soak.ts

check: fmt lint
	cd web && npm run --silent check

fmt:
	cargo fmt --all --check

lint:
	$(ENV) cargo clippy -p rfm-playground --all-targets -- -D warnings
