#!/usr/bin/env bash
# The CPU path in the browser against native and the official JAX code, in one run, alternating
# (docs/benchmarks.md, "The CPU modules"). Run after `make build` and a release build of the CLI:
#   RFM_OFFICIAL=<official checkout> JAX_PYTHON=<python with jax> scripts/bench/browser-vs-native.sh [ROUNDS]
# Without RFM_OFFICIAL / JAX_PYTHON the JAX rows are skipped. Prints one line per measurement.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$root/scripts/env.sh"
rounds="${1:-2}"
rfm="$CARGO_TARGET_DIR/release/rfm"
[[ -x "$rfm" ]] || { echo "no release CLI at $rfm: cargo build --release -p rfm-playground" >&2; exit 1; }
# One line per JSON line of `rfm bench` / jax_rfm.py (the same keys).
rate() { python3 -c 'import json,sys
for l in sys.stdin:
    l=l.strip()
    if l.startswith("{"):
        r=json.loads(l); g=r.get("matmul_gflop_per_s")
        print(r["config"], "updates/s %.3f" % r.get("updates_per_s", 0), "actions/s %.0f" % r.get("actions_per_s", 0), *(["product GFLOP/s %.1f" % g] if g else []))'; }
for round in $(seq 1 "$rounds"); do
  for t in 2 1; do
    echo "round $round native ${t}t load $(cut -d' ' -f1 /proc/loadavg)"
    RAYON_NUM_THREADS=$t "$rfm" bench --config both --seconds 3 --repeats 1 --measure updates,actions,products | rate | sed "s/^/  native ${t}t /"
  done
  echo "round $round browser load $(cut -d' ' -f1 /proc/loadavg)"
  (cd "$root/tests" && BENCH_QUERY='bench=cpu&configs=playground,released&modules=cpu,relaxed,threads&seconds=3&measure=updates,actions,products' \
    node --import tsx e2e/bench.ts 2>/dev/null | grep '^round' | sed 's/^round 1 /  browser /')
  if [[ -n "${RFM_OFFICIAL:-}" && -n "${JAX_PYTHON:-}" ]]; then
    echo "round $round jax load $(cut -d' ' -f1 /proc/loadavg)"
    "$JAX_PYTHON" "$root/scripts/bench/jax_rfm.py" --config both --seconds 3 --repeats 1 --measure updates,actions 2>/dev/null \
      | rate | sed "s/^/  jax /"
  fi
done
