#!/usr/bin/env python3
"""Side-by-side learning curves of ours and the official JAX code (scripts/parity/run.sh).

    python3 scripts/parity/report.py OUT [--png docs/figures/jax-parity.png] [--seeds-column]

Prints a Markdown table: at every 1k env steps, the eval return of both (mean ± std over seeds,
and the median), the difference of the means (ours − official) with a 95 % bootstrap interval
and a two-sided permutation p-value (10,000 relabellings, fixed seed), then the same for each
seed's mean over the early (2k–5k) and the late (6k–10k) evaluations. Both sides are evaluated
on the same 10 start states (run.sh). The plot needs matplotlib.
"""
import argparse
import json
import pathlib
import random
import statistics as st

EARLY = range(2000, 5001, 1000)
LATE = range(6000, 10001, 1000)


def ours(out: pathlib.Path):
    runs = {}
    for path in out.glob("ours-s*.jsonl"):
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        evals = {x["step"]: x["eval_return"] for x in lines if "eval_return" in x}
        last = lines[-1]
        evals[last["steps"]] = last["final_eval_return"]
        runs[int(path.stem.split("-s")[1])] = evals
    return runs


def official(out: pathlib.Path):
    runs = {}
    for path in out.glob("official/Pendulum-v1/rfm_s*/*/metrics.jsonl"):
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        seed = int(path.parent.parent.name.split("_s")[1])
        runs[seed] = {x["step"]: x["episode_reward"] for x in lines if "episode_reward" in x}
    return runs


def window(run, steps):
    v = [run[s] for s in steps if s in run]
    return st.mean(v) if len(v) == len(steps) else None


def describe(v):
    spread = f" ± {st.stdev(v):.0f}" if len(v) > 1 else ""
    return f"{st.mean(v):.0f}{spread} ({st.median(v):.0f})"


def compare(a, b, rng):
    """Difference of means a − b, its 95 % bootstrap interval, and a permutation p-value."""
    diff = st.mean(a) - st.mean(b)
    boots = sorted(
        st.mean(rng.choices(a, k=len(a))) - st.mean(rng.choices(b, k=len(b))) for _ in range(10000)
    )
    lo, hi = boots[249], boots[9750]
    pooled, n, extreme = a + b, len(a), 0
    for _ in range(10000):
        rng.shuffle(pooled)
        if abs(st.mean(pooled[:n]) - st.mean(pooled[n:])) >= abs(diff) - 1e-9:
            extreme += 1
    return f"{diff:+.0f} [{lo:+.0f}, {hi:+.0f}]", (extreme + 1) / 10001


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--png", type=pathlib.Path)
    ap.add_argument("--seeds-column", action="store_true", help="also list every seed's value")
    a = ap.parse_args()
    mine, theirs = ours(a.out), official(a.out)
    rng = random.Random(0)
    rows = [(str(s), lambda r, s=s: r.get(s)) for s in sorted({s for r in [*mine.values(), *theirs.values()] for s in r if s > 0})]
    rows += [
        ("mean of 2k–5k", lambda r: window(r, EARLY)),
        ("mean of 6k–10k", lambda r: window(r, LATE)),
    ]
    print(
        f"| env steps | ours ({len(mine)} seeds) | official JAX ({len(theirs)} seeds) "
        "| ours − official [95 % CI] | p |"
    )
    print("|---|---|---|---|---|")
    for name, get in rows:
        x = [v for v in (get(mine[k]) for k in sorted(mine)) if v is not None]
        y = [v for v in (get(theirs[k]) for k in sorted(theirs)) if v is not None]
        if len(x) < 2 or len(y) < 2:
            continue
        diff, p = compare(x, y, rng)
        print(f"| {name} | {describe(x)} | {describe(y)} | {diff} | {p:.3f} |")
        if a.seeds_column:
            print(f"|  | {', '.join(f'{v:.0f}' for v in x)} | {', '.join(f'{v:.0f}' for v in y)} | | |")
    print("\nCells: mean ± std over seeds (median).")
    if a.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps = sorted({s for r in [*mine.values(), *theirs.values()] for s in r if s > 0})
        fig, ax = plt.subplots(figsize=(6, 4))
        for runs, label, colour in [(mine, "ours", "tab:blue"), (theirs, "official JAX", "tab:orange")]:
            runs = list(runs.values())
            xs = [s for s in steps if all(s in r for r in runs)]
            mean = [st.mean(r[s] for r in runs) for s in xs]
            q = [st.quantiles([r[s] for r in runs], n=4) for s in xs]
            ax.plot(xs, mean, label=f"{label} (mean of {len(runs)} seeds)", color=colour)
            ax.fill_between(xs, [x[0] for x in q], [x[2] for x in q], color=colour, alpha=0.2)
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return (the same 10 start states)")
        ax.set_title("Pendulum-v1, RFM at playground size (band: quartiles)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(a.png, dpi=110)


if __name__ == "__main__":
    main()
