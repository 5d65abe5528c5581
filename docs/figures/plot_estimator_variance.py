"""Plot per-t velocity-target MSE of the posterior-mean estimators.

Reads the "Per-t MSE" tables in ../estimators.md (produced by `rfm bench-estimators`)
and writes estimator-variance-vs-t.png next to this script:
one panel per target, one line per estimator, log-scale y.

Regenerate: python docs/figures/plot_estimator_variance.py  (needs matplotlib)
"""
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "estimators.md"
OUT = HERE / "estimator-variance-vs-t.png"


def parse_tables(text):
    """Return {section: {target: (ts, {estimator: [mse per t]})}} for every per-t section."""
    sections = {}
    section = None
    target = None
    for line in text.splitlines():
        h = re.match(r"^##\s+Per-t MSE,\s*(.+?)\s*$", line)
        if h:
            section = h.group(1)
            sections[section] = {}
            continue
        if line.startswith("## "):
            section = None
            continue
        if section is None:
            continue
        m = re.match(r"^`([^`]+)`\s*\(", line)
        if m:
            target = m.group(1)
            continue
        if not line.startswith("|") or target is None:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "estimator":
            sections[section][target] = ([float(c) for c in cells[1:]], {})
        elif set(cells[0]) <= set("-: "):
            continue
        elif target in sections[section]:
            sections[section][target][1][cells[0]] = [float(c) for c in cells[1:]]
    return sections


def main():
    sections = parse_tables(DOC.read_text(encoding="utf-8"))
    panels = [(sec, tgt, data) for sec, tgts in sections.items() for tgt, data in tgts.items()]
    if not panels:
        raise SystemExit(f"no per-t tables found in {DOC.name}")
    styles = {
        "noise": dict(color="tab:blue", marker="o"),
        "grad": dict(color="tab:orange", marker="s"),
        "rfm": dict(color="tab:green", marker="^"),
        "cv-iso": dict(color="tab:red", marker="v"),
        "cv-pool": dict(color="tab:purple", marker="D", linestyle="--"),
    }
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), sharey=True)
    if len(panels) == 1:
        axes = [axes]
    for ax, (sec, tgt, (ts, rows)) in zip(axes, panels):
        for name, ys in rows.items():
            ax.plot(ts, ys, label=name, markersize=4, linewidth=1.5, **styles.get(name, {}))
        ax.set_yscale("log")
        ax.set_title(f"{tgt} · {sec}")
        ax.set_xlabel("t")
        ax.set_xticks(ts)
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", alpha=0.1)
    axes[0].set_ylabel("velocity-target MSE (K = 100)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), frameon=False,
               bbox_to_anchor=(0.5, 1.06))
    fig.suptitle("Posterior-mean estimator error vs t (rfm bench-estimators, seed 0)", y=1.13)
    fig.tight_layout()
    fig.savefig(OUT, dpi=130, bbox_inches="tight")
    print(f"wrote {OUT.name}: {len(panels)} panels")


if __name__ == "__main__":
    main()
