#!/usr/bin/env bash
# Installs whatever this project needs that the machine lacks, and nothing else. Idempotent:
# a second run on a ready machine only checks versions (a few seconds).
#
#   - Debian: chromium + chromium-driver, firefox-esr (browser tests); when the default Rust toolchain has
#     no wasm32-unknown-unknown std, Debian's rust-web toolchain (rustc-web, cargo-web,
#     rust-web-src, lld-22) to build std for wasm (see scripts/toolchain/cargo).
#   - cargo install: wasm-bindgen-cli (= the crate's wasm-bindgen; its test runner runs the wasm
#     tests), trunk 0.21.
#   - npm packages from the lockfiles in web/ and tests/.
#   - cargo fetch for both targets, so the site builds offline.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=env.sh
source "$root/scripts/env.sh"

WASM_BINDGEN_VERSION=0.2.130
TRUNK_VERSION=0.21.14

step() { printf '\n==> %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
SECONDS=0

# --- Debian packages --------------------------------------------------------------------
need_apt=()
[[ -x /usr/bin/chromium ]] || need_apt+=(chromium)
[[ -x /usr/bin/chromedriver ]] || need_apt+=(chromium-driver)
[[ -x /usr/bin/firefox-esr ]] || need_apt+=(firefox-esr)
if ! "$root/scripts/toolchain/has-wasm-target"; then
  [[ -x /usr/bin/cargo && -x /usr/bin/rustc ]] || need_apt+=(rustc-web cargo-web)
  compgen -G "/usr/lib/rustlib/src/rust/library/std" >/dev/null || need_apt+=(rust-web-src)
  have lld-22 || need_apt+=(lld-22)
fi
if ((${#need_apt[@]})); then
  step "installing Debian packages: ${need_apt[*]}"
  sudo_cmd=()
  [[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# --- Rust tools ---------------------------------------------------------------------------
version_of() { "$1" --version 2>/dev/null | head -n1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1; }

if [[ "$(version_of wasm-bindgen)" != "$WASM_BINDGEN_VERSION" ]]; then
  step "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes)"
  # No --locked: its lockfile pins a crate version the registry no longer has.
  cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
if [[ "$(version_of trunk)" != "$TRUNK_VERSION" ]]; then
  step "installing trunk $TRUNK_VERSION (about 7 minutes on 2 cores)"
  cargo install -q trunk --version "$TRUNK_VERSION" --locked
fi

# --- npm packages -------------------------------------------------------------------------
for dir in web tests; do
  stamp="$root/$dir/node_modules/.package-lock.json"
  if [[ ! -f "$stamp" || "$root/$dir/package-lock.json" -nt "$stamp" ]]; then
    step "installing npm packages in $dir/"
    (cd "$root/$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

# --- crates for offline builds -----------------------------------------------------------
stamp="$CARGO_TARGET_DIR/.fetched-$(sha256sum "$root/Cargo.lock" | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  step "fetching crates (native and wasm32, incl. std's dependencies for build-std)"
  (cd "$root" && cargo fetch -q && cargo fetch -q --target wasm32-unknown-unknown)
  mkdir -p "$CARGO_TARGET_DIR" && touch "$stamp"
fi

printf 'setup: ready (%ss)\n' "$SECONDS" >&2
