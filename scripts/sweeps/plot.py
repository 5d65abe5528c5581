#!/usr/bin/env python3
"""Plot `rfm sweep --report` CSVs: one panel per env, mean eval return against env steps for
every group (its axes except env and seed), with a band of ± one std over seeds.

    python3 scripts/sweeps/plot.py runs/table/report.csv runs/sac/report.csv --png table.png

Needs matplotlib. Groups from a CSV without `param`/`estimator` columns (e.g. the SAC grid) are
labelled by the file's parent directory (`sac`) and drawn dashed in black; otherwise the colour
is the group's last axis value (the estimator) and the line style its first (flow solid, other
values dotted).
"""
import argparse
import collections
import csv
import pathlib

COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:olive"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="+", type=pathlib.Path)
    ap.add_argument("--png", type=pathlib.Path, required=True)
    a = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = collections.defaultdict(list)
    dashed = set()
    for path in a.csv:
        for r in csv.DictReader(path.open()):
            if r["metric"] != "eval_return":
                continue
            keys = [k for k in r if k not in ("env", "metric", "step", "n", "mean", "std")]
            label = " ".join(r[k] for k in keys) or path.parent.name
            if not keys:
                dashed.add(label)
            std = float(r["std"]) if r["std"] else 0.0
            curves[(r["env"], label)].append((int(r["step"]), float(r["mean"]), std))
    envs = list(dict.fromkeys(k[0] for k in curves))
    estimators = sorted({label.split()[-1] for _, label in curves})
    fig, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 4.2), squeeze=False)
    for (env, label), pts in curves.items():
        pts.sort()
        ax = axes[0][envs.index(env)]
        xs, ms, ss = zip(*pts)
        words = label.split()
        # Colour by the last axis value (the estimator), line style by the first (the param).
        colour = "black" if label in dashed else COLOURS[estimators.index(words[-1]) % len(COLOURS)]
        style = "--" if label in dashed else ("-" if words[0] == "flow" or len(words) == 1 else ":")
        ax.plot(xs, ms, label=label, linestyle=style, color=colour, linewidth=1.3)
        ax.fill_between(xs, [m - s for m, s in zip(ms, ss)], [m + s for m, s in zip(ms, ss)], color=colour, alpha=0.06)
    for ax, env in zip(axes[0], envs):
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return (mean over seeds)")
    axes[0][-1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)


if __name__ == "__main__":
    main()
