# RFM Playground — the two commands for a fresh machine:
#   make serve   build the site and serve it on http://127.0.0.1:8080 (installs what's missing)
#   make test    run every test suite (what CI runs, via .ci/run)
# Other targets are steps of those two.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV := source scripts/env.sh &&
WASM_TARGET := wasm32-unknown-unknown

.PHONY: serve test setup build test-native test-native-wgpu test-wasm test-wasm-webgpu test-web test-e2e check fmt lint soak

# The CPU modules (plain, relaxed SIMD) are built and served first; the threaded and WebGPU
# modules build in the background after them (web/build.mjs). Until then the page trains on the
# relaxed-SIMD module and says "The WebGPU module is still building" when WebGPU is asked for.
serve: setup
	@echo "Serving the playground at http://127.0.0.1:8080 once the CPU modules are built; the threaded and WebGPU modules follow in the background"
	$(ENV) RFM_LATER_MODULES=background trunk serve --release

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

# The wasm tests in Chromium for the CPU modules (plain SIMD, relaxed SIMD: one build of the
# dependencies for both). WebGPU in the browser is tested by the e2e tests (training, device
# loss); `make test-wasm-webgpu` runs these tests in the WebGPU module too (its own build of the
# wasm dependencies with the test crate, ~10 min cold, so not part of `make test`).
test-wasm:
	$(ENV) cargo test --profile wasm -p rfm-playground --target $(WASM_TARGET) --test web
	$(ENV) cargo test --profile wasm -p rfm-playground --target $(WASM_TARGET) --test web --features relaxed-simd

test-wasm-webgpu:
	$(ENV) cargo test --profile wasm -p rfm-playground --target $(WASM_TARGET) --test web --features webgpu

# The seam's parity suite on a native wgpu adapter: burn's kernels and the WebGPU module's own
# (crate/src/nets/fused.rs, fused/) against the host kernels, and each fused kernel against burn's ops.
# Any Vulkan/Metal/DX12/GL adapter; without a GPU, Mesa's lavapipe (Debian:
# mesa-vulkan-drivers). Its own native build with wgpu (~15 min cold here), so not part of
# `make test`. The first run on a machine also waits a few minutes while lavapipe compiles the
# fused kernels (5 min 21 s here on 2026-12-02; Mesa caches them for later runs).
# One test thread: on wgpu's GL backend (llvmpipe) a test that waits over a second for the GL
# context while another compiles kernels panics with "Could not lock adapter context" (seen on
# a first run, 2026-12-04); the adapter runs one thing at a time anyway.
test-native-wgpu:
	$(ENV) cargo test --release -p rfm-playground --features webgpu --lib -- --test-threads=1 seam::tests nets::fused

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
