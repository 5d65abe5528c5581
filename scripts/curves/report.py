#!/usr/bin/env python3
"""Summarise a `run.py` sweep: a Markdown table (mean ± std over seeds) and a plot image.

    python3 scripts/curves/report.py --out curves --png docs/figures/learning-curves.png

The table has, per env and algorithm: seeds, eval return at each eval step (mean ± std over seeds),
the final eval return's range over seeds, median updates/s, and on multigoal the final
evaluation's episodes per goal summed over seeds. The plot (needs matplotlib) has one panel per
env: mean eval return against env steps with a band from the lowest to the highest seed.
"""
import argparse
import json
import pathlib
import statistics as st

ALGOS = ["rfm", "rfm-noise", "rfm-grad", "sac"]
ENVS = ["pendulum", "multigoal", "mountain-car"]


def load(out: pathlib.Path):
    runs = {}
    for env in ENVS:
        for algo in ALGOS:
            for path in sorted((out / env).glob(f"{algo}-s*.jsonl")):
                lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
                if not lines or "final_eval_return" not in lines[-1]:
                    continue
                evals = [(x["step"], x["eval_return"]) for x in lines if "eval_return" in x]
                last = lines[-1]
                evals.append((last["steps"], last["final_eval_return"]))
                rates = [x["updates_per_sec"] for x in lines if "updates_per_sec" in x]
                runs.setdefault((env, algo), []).append({
                    "evals": evals,
                    "final": last["final_eval_return"],
                    "goals": last.get("goals_reached"),
                    "rate": st.median(rates) if rates else None,
                    "seconds": last["seconds"],
                })
    return runs


def pm(xs):
    if len(xs) == 1:
        return f"{xs[0]:.0f}"
    return f"{st.mean(xs):.0f} ± {st.stdev(xs):.0f}"


def table(runs) -> str:
    rows = []
    for env in ENVS:
        algos = [a for a in ALGOS if (env, a) in runs]
        if not algos:
            continue
        steps = [s for s, _ in runs[(env, algos[0])][0]["evals"]]
        head = ["algo", "seeds"] + [f"{s // 1000 if s % 1000 == 0 else s / 1000}k" for s in steps]
        head += ["final: lowest..highest seed", "upd/s (median)"]
        if env == "multigoal":
            head.append("final eval episodes per goal (all seeds)")
        rows.append(f"\n**{env}** — eval return after N env steps, mean ± std over seeds\n")
        rows.append("| " + " | ".join(head) + " |")
        rows.append("|" + "---|" * len(head))
        for a in algos:
            rs = runs[(env, a)]
            cells = [f"`{a}`", str(len(rs))]
            for i in range(len(steps)):
                cells.append(pm([r["evals"][i][1] for r in rs if i < len(r["evals"])]))
            finals = [r["final"] for r in rs]
            cells.append(f"{min(finals):.0f}..{max(finals):.0f}")
            rates = [r["rate"] for r in rs if r["rate"]]
            cells.append(f"{st.median(rates):.1f}" if rates else "–")
            if env == "multigoal":
                goals = [sum(g) for g in zip(*[r["goals"] for r in rs if r["goals"]])]
                cells.append(str(goals))
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(runs, png: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    envs = [e for e in ENVS if any((e, a) in runs for a in ALGOS)]
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.8), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for a in ALGOS:
            rs = runs.get((env, a))
            if not rs:
                continue
            n = min(len(r["evals"]) for r in rs)
            xs = [rs[0]["evals"][i][0] for i in range(n)]
            ys = [[r["evals"][i][1] for r in rs] for i in range(n)]
            ax.plot(xs, [st.mean(y) for y in ys], label=f"{a} ({len(rs)} seeds)")
            ax.fill_between(xs, [min(y) for y in ys], [max(y) for y in ys], alpha=0.2)
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Playground preset, CPU: mean eval return (band: lowest..highest seed)")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="curves")
    ap.add_argument("--png", type=pathlib.Path)
    a = ap.parse_args()
    runs = load(pathlib.Path(a.out))
    print(table(runs))
    if a.png:
        plot(runs, a.png)


if __name__ == "__main__":
    main()
