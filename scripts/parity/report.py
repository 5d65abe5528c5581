#!/usr/bin/env python3
"""Side-by-side learning curves of ours and the official JAX code (scripts/parity/run.sh).

    python3 scripts/parity/report.py OUT [--png docs/figures/jax-parity.png]

Prints a Markdown table: eval return (mean ± std over seeds, and each seed) at every 1k env
steps for both. The plot needs matplotlib.
"""
import argparse
import json
import pathlib
import statistics as st


def ours(out: pathlib.Path):
    runs = []
    for path in sorted(out.glob("ours-s*.jsonl")):
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        evals = {x["step"]: x["eval_return"] for x in lines if "eval_return" in x}
        last = lines[-1]
        evals[last["steps"]] = last["final_eval_return"]
        runs.append(evals)
    return runs


def official(out: pathlib.Path):
    runs = []
    for path in sorted(out.glob("official/Pendulum-v1/rfm_s*/*/metrics.jsonl")):
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        runs.append({x["step"]: x["episode_reward"] for x in lines if "episode_reward" in x})
    return runs


def cell(runs, step):
    v = [r[step] for r in runs if step in r]
    if not v:
        return "–"
    spread = f" ± {st.stdev(v):.0f}" if len(v) > 1 else ""
    return f"{st.mean(v):.0f}{spread} ({', '.join(f'{x:.0f}' for x in v)})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--png", type=pathlib.Path)
    a = ap.parse_args()
    mine, theirs = ours(a.out), official(a.out)
    steps = sorted({s for r in mine + theirs for s in r if s > 0})
    print(f"| env steps | ours ({len(mine)} seeds) | official JAX ({len(theirs)} seeds) |")
    print("|---|---|---|")
    for s in steps:
        print(f"| {s} | {cell(mine, s)} | {cell(theirs, s)} |")
    same = [json.loads(p.read_text())["eval_return"] for p in sorted(a.out.glob("ours-s*.gym-starts.json"))]
    if same:
        final = max(steps)
        print(
            f"| {final}, on the official evaluation's 10 start states | "
            f"{st.mean(same):.0f}{f' ± {st.stdev(same):.0f}' if len(same) > 1 else ''} "
            f"({', '.join(f'{x:.0f}' for x in same)}) | {cell(theirs, final)} |"
        )
    if a.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for runs, label, colour in [(mine, "ours", "tab:blue"), (theirs, "official JAX", "tab:orange")]:
            xs = [s for s in steps if all(s in r for r in runs)]
            mean = [st.mean(r[s] for r in runs) for s in xs]
            lo = [min(r[s] for r in runs) for s in xs]
            hi = [max(r[s] for r in runs) for s in xs]
            ax.plot(xs, mean, label=f"{label} (mean of {len(runs)} seeds)", color=colour)
            ax.fill_between(xs, lo, hi, color=colour, alpha=0.2)
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return (10 episodes)")
        ax.set_title("Pendulum-v1, RFM at playground size")
        ax.legend()
        fig.tight_layout()
        fig.savefig(a.png, dpi=110)


if __name__ == "__main__":
    main()
