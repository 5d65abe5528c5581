#!/usr/bin/env python3
"""Learning curves: `rfm train` over algorithms x environments x seeds, resumable.

Each run writes `<out>/<env>/<algo>-s<seed>.jsonl` (the CLI's JSON lines, untouched); a run whose
file already ends with the `final_eval_return` line is skipped, so an interrupted sweep continues
where it stopped. Runs go `--jobs` at a time, each with one rayon thread (so the jobs do not fight
over the cores). Summarise with `report.py`.

    python3 scripts/curves/run.py --rfm target/release/rfm --out curves --jobs 2
"""
import argparse
import concurrent.futures as cf
import json
import os
import pathlib
import subprocess
import sys
import time

# Run names (kept as file names) → the `rfm train` flags that select them.
ALGOS = {
    "rfm": ["--agent", "rfm", "--estimator", "rfm"],
    "rfm-noise": ["--agent", "rfm", "--estimator", "noise"],
    "rfm-grad": ["--agent", "rfm", "--estimator", "grad"],
    "sac": ["--agent", "sac"],
}
# env: (env steps, eval every, eval episodes). Budgets fit a 2-core machine in about an hour with
# the playground preset; pass --steps-scale to lengthen them.
BUDGETS = {
    "pendulum": (10000, 1000, 5),
    "multigoal": (3000, 500, 20),
    "mountain-car": (6000, 1000, 3),
}


def complete(path: pathlib.Path) -> bool:
    lines = path.read_text().strip().splitlines() if path.exists() else []
    return bool(lines) and "final_eval_return" in json.loads(lines[-1])


def finished(path: pathlib.Path) -> bool:
    """True for a complete run; also adopts a complete `.partial` left by a stopped sweep."""
    partial = path.with_suffix(".partial")
    if not path.exists() and complete(partial):
        partial.rename(path)
    return complete(path)


def running(path: pathlib.Path) -> bool:
    """A `.partial` written in the last 5 minutes belongs to a run still going elsewhere."""
    partial = path.with_suffix(".partial")
    return partial.exists() and time.time() - partial.stat().st_mtime < 300


def run_one(rfm: str, out: pathlib.Path, env: str, algo: str, seed: int, scale: float) -> str:
    steps, every, episodes = BUDGETS[env]
    steps = int(steps * scale)
    path = out / env / f"{algo}-s{seed}.jsonl"
    if finished(path):
        return f"skip {path}"
    if running(path):
        return f"skip {path} (running elsewhere; run again later to adopt it)"
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [rfm, "train", "--env", env, *ALGOS[algo], "--seed", str(seed),
           "--steps", str(steps), "--eval-every", str(every), "--eval-episodes", str(episodes)]
    envvars = dict(os.environ, RAYON_NUM_THREADS="1")
    t0 = time.time()
    tmp = path.with_suffix(".partial")
    with open(tmp, "w") as f:
        res = subprocess.run(cmd, stdout=f, stderr=subprocess.PIPE, text=True, env=envvars)
    if res.returncode != 0:
        err = res.stderr.strip().splitlines()[-1:] or ["?"]
        tmp.rename(path.with_suffix(".failed"))
        return f"FAILED {env} {algo} s{seed}: {err[0]}"
    tmp.rename(path)
    last = json.loads(path.read_text().strip().splitlines()[-1])
    return (f"done {env} {algo} s{seed} in {time.time() - t0:.0f}s: "
            f"final eval {last['final_eval_return']:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rfm", required=True, help="path to the rfm binary (a release build)")
    ap.add_argument("--out", default="curves", help="output directory")
    ap.add_argument("--envs", default=",".join(BUDGETS))
    ap.add_argument("--algos", default=",".join(ALGOS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--steps-scale", type=float, default=1.0)
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    jobs = [(e, al, s) for e in a.envs.split(",") for s in range(a.seeds)
            for al in a.algos.split(",")]
    with cf.ThreadPoolExecutor(a.jobs) as pool:
        futs = [pool.submit(run_one, a.rfm, out, e, al, s, a.steps_scale) for e, al, s in jobs]
        for fut in cf.as_completed(futs):
            print(fut.result(), flush=True)


if __name__ == "__main__":
    sys.exit(main())
