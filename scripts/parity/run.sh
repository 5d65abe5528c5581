#!/usr/bin/env bash
# Learning parity with the official JAX code on Pendulum-v1 (docs/rl.md, "Learning parity with
# the official code"): the official agent and ours with matched settings, seeds 0..N-1.
#
#   RFM_OFFICIAL=/path/to/ReverseFlowMatching JAX_PYTHON=/path/to/venv/bin/python \
#   RFM=target/release/rfm scripts/parity/run.sh OUT [SEEDS]
#
# RFM_OFFICIAL: a checkout of github.com/azizanlab/ReverseFlowMatching (never copied here);
# JAX_PYTHON: a Python with its pins (jax 0.6.2, flax 0.10.7, optax 0.2.6, gymnasium 1.2.2,
# dm_control 1.0.34). Matched: 2 x 64 nets, time embedding 32, batch 128, K 16, 8 candidates
# (acting, TD target and evaluation), 10 Euler steps, lambda 0.02, Adam 3e-4 / 1e-3, clip 10,
# 1k uniform warm-up steps, replay 50k, 10k env steps, the prior proposal, an evaluation every
# 1k steps of the same 10 episodes (Gymnasium's start states) with the candidate of largest Q.
set -euo pipefail
out=${1:?usage: run.sh OUT [SEEDS]}
seeds=${2:-3}
: "${RFM_OFFICIAL:?set RFM_OFFICIAL to a checkout of the official code}"
: "${JAX_PYTHON:?set JAX_PYTHON to a Python with the pins of the official code}"
rfm=${RFM:-rfm}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# The official evaluation's start states: Gymnasium's Pendulum-v1 reset after reset(seed=i),
# i = 0..9 (its SyncVectorEnv resets each seeded env once more). Ours evaluates on exactly
# those too (`--eval-init-states`), so both curves are measured on the same 10 episodes.
"$JAX_PYTHON" - "$out/gym-starts.json" <<'PY' 2>/dev/null
import json, sys
import gymnasium as gym
starts = []
for i in range(10):
    env = gym.make("Pendulum-v1")
    env.reset(seed=i)
    env.reset()
    starts.append([float(x) for x in env.unwrapped.state])
json.dump(starts, open(sys.argv[1], "w"))
PY
for ((s = 0; s < seeds; s++)); do
  if [[ ! -s "$out/ours-s$s.jsonl" ]]; then
    RAYON_NUM_THREADS=1 "$rfm" train --preset playground --env pendulum --set proposal=prior \
      --steps 10000 --eval-every 1000 --eval-init-states "$out/gym-starts.json" --seed "$s" \
      > "$out/ours-s$s.jsonl.partial"
    mv "$out/ours-s$s.jsonl.partial" "$out/ours-s$s.jsonl"
  fi
  if [[ -z $(find "$out/official/Pendulum-v1/rfm_s$s" -name metrics.jsonl 2>/dev/null) ]]; then
    (cd "$RFM_OFFICIAL" && "$JAX_PYTHON" main.py --config configs/rfm.yaml \
      --override env.name=Pendulum-v1 --override algo=rfm --override seed="$s" \
      --override trainer.max_steps=10000 --override trainer.start_training=1000 \
      --override trainer.batch_size=128 --override trainer.replay_buffer_size=50000 \
      --override trainer.eval_interval=1000 --override trainer.num_eval_envs=10 \
      --override actor.hidden_size=64 --override actor.emb_size=32 --override critic.hidden_size=64 \
      --override rfm.num_estimator_mc_samples=16 --override rfm.num_particles_training=8 \
      --override rfm.num_particles_data=8 --override rfm.num_particles_eval=8 \
      --override rfm.num_integration_steps=10 --override logger.wandb_project=none \
      --override logger.save_agent=false --override logger.log_dir="$out/official" \
      --override logger.exp="s$s") > "$out/official-s$s.log" 2>&1
  fi
done
echo "done: python3 scripts/parity/report.py $out"
