#!/usr/bin/env python3
"""Ours (`rfm bench`) vs the official JAX agent (scripts/bench/jax_rfm.py), interleaved in one run.

    RFM_OFFICIAL=<official checkout> python scripts/bench/compare.py --rfm <path to rfm binary> \
        --python <python with jax> --rounds 3 --seconds 4 [--scale]

Each round runs, per config, ours then theirs (one measurement each), recording the 1-minute
load average before every measurement; the summary gives the medians over rounds and the ratio
ours / theirs. `--baseline <rfm binary>` adds an earlier build of ours, run just before ours in
every round (before/after of a change, interleaved). `--scale` instead measures updates/s at the playground size with batch, K,
hidden width and candidates doubled one at a time (both implementations, interleaved).
Output: JSON lines (raw), then a Markdown summary table on stdout.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# (label, ours overrides (TrainConfig camelCase), theirs overrides (jax_rfm.py keys))
SCALE = [
    ("base (playground)", {}, {}),
    ("batch x2 (256)", {"batchSize": 256}, {"batch": 256}),
    ("batch x4 (512)", {"batchSize": 512}, {"batch": 512}),
    ("K x2 (32)", {"posteriorSamples": 32}, {"k": 32}),
    ("K x4 (64)", {"posteriorSamples": 64}, {"k": 64}),
    ("hidden x2 (128)", {"actorHidden": 128, "criticHidden": 128}, {"hidden": 128}),
    ("hidden x4 (256)", {"actorHidden": 256, "criticHidden": 256}, {"hidden": 256}),
    ("candidates x2 (16)", {"candidates": 16}, {"candidates": 16}),
    ("candidates x4 (32)", {"candidates": 32}, {"candidates": 32}),
]


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run_json(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{res.stderr}")
    return [json.loads(l) for l in res.stdout.splitlines() if l.startswith("{")]


def ours(a, config, measure, overrides=None, seconds=None, binary=None):
    cmd = [binary or a.rfm, "bench", "--config", config, "--measure", measure, "--repeats", "1",
           "--seconds", str(seconds or a.seconds), "--env", "pendulum"]
    if overrides:
        cmd += ["--overrides", json.dumps(overrides)]
    return run_json(cmd)[0]


def theirs(a, config, measure, overrides=None, seconds=None):
    cmd = [a.python, os.path.join(HERE, "jax_rfm.py"), "--config", config, "--measure", measure,
           "--repeats", "1", "--seconds", str(seconds or a.seconds)]
    if overrides:
        cmd += ["--overrides", json.dumps(overrides)]
    return run_json(cmd)[0]


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rfm", required=True)
    p.add_argument("--baseline", help="an earlier rfm binary, measured before ours each round")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--configs", default="playground,released")
    p.add_argument("--scale", action="store_true")
    a = p.parse_args()
    if not os.environ.get("RFM_OFFICIAL"):
        sys.exit("set RFM_OFFICIAL to the official checkout")

    rows = {}
    if a.scale:
        for rnd in range(a.rounds):
            for label, o_over, t_over in SCALE:
                l0 = load1()
                o = ours(a, "playground", "updates", o_over)
                l1 = load1()
                t = theirs(a, "playground", "updates", t_over)
                rec = dict(round=rnd, point=label, load_ours=l0, load_theirs=l1,
                           ours_updates=o["updates_per_s"], jax_updates=t["updates_per_s"])
                print(json.dumps(rec), flush=True)
                r = rows.setdefault(label, {"o": [], "t": [], "l": []})
                r["o"].append(o["updates_per_s"])
                r["t"].append(t["updates_per_s"])
                r["l"] += [l0, l1]
        base_o = med(rows[SCALE[0][0]]["o"])
        base_t = med(rows[SCALE[0][0]]["t"])
        print("\n| point | ours upd/s | ours rel. | JAX upd/s | JAX rel. | ours/JAX | load |")
        print("|---|---|---|---|---|---|---|")
        for label, _, _ in SCALE:
            r = rows[label]
            mo, mt = med(r["o"]), med(r["t"])
            print(f"| {label} | {mo:.2f} | {mo / base_o:.2f} | {mt:.2f} | {mt / base_t:.2f} | "
                  f"{mo / mt:.2f} | {min(r['l']):.1f}–{max(r['l']):.1f} |")
        return

    configs = a.configs.split(",")
    for rnd in range(a.rounds):
        for c in configs:
            b = None
            if a.baseline:
                lb = load1()
                b = ours(a, c, "updates,actions", binary=a.baseline)
            l0 = load1()
            o = ours(a, c, "updates,actions,estimator")
            l1 = load1()
            t = theirs(a, c, "updates,actions")
            rec = dict(round=rnd, config=c, load_ours=l0, load_theirs=l1,
                       ours_updates=o["updates_per_s"], jax_updates=t["updates_per_s"],
                       ours_actions=o["actions_per_s"], jax_actions=t["actions_per_s"],
                       ours_estimator_targets=o["estimator_targets_per_s"],
                       jax_compile_s=t.get("compile_s"))
            if b:
                rec.update(load_baseline=lb, baseline_updates=b["updates_per_s"],
                           baseline_actions=b["actions_per_s"])
            print(json.dumps(rec), flush=True)
            r = rows.setdefault(c, {k: [] for k in ("ou", "tu", "oa", "ta", "oe", "l", "bu", "ba")})
            if b:
                r["bu"].append(b["updates_per_s"])
                r["ba"].append(b["actions_per_s"])
                r["l"].append(lb)
            r["ou"].append(o["updates_per_s"])
            r["tu"].append(t["updates_per_s"])
            r["oa"].append(o["actions_per_s"])
            r["ta"].append(t["actions_per_s"])
            r["oe"].append(o["estimator_targets_per_s"])
            r["l"] += [l0, l1]
    print("\n| config | ours upd/s | JAX upd/s | ours/JAX | ours act/s | JAX act/s | ours/JAX "
          "| ours est. targets/s | load (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in configs:
        r = rows[c]
        ou, tu, oa, ta = med(r["ou"]), med(r["tu"]), med(r["oa"]), med(r["ta"])
        print(f"| {c} | {ou:.2f} | {tu:.2f} | {ou / tu:.2f} | {oa:.0f} | {ta:.0f} | "
              f"{oa / ta:.2f} | {med(r['oe']):.3g} | {min(r['l']):.1f}–{max(r['l']):.1f} |")
    if a.baseline:
        print("\n| config | baseline upd/s | ours upd/s | ours/baseline | baseline act/s | "
              "ours act/s | ours/baseline |")
        print("|---|---|---|---|---|---|---|")
        for c in configs:
            r = rows[c]
            bu, ou, ba, oa = med(r["bu"]), med(r["ou"]), med(r["ba"]), med(r["oa"])
            print(f"| {c} | {bu:.2f} | {ou:.2f} | {ou / bu:.2f} | {ba:.0f} | {oa:.0f} | "
                  f"{oa / ba:.2f} |")


if __name__ == "__main__":
    main()
