#!/usr/bin/env python3
"""Throwaway harness: time the official JAX RFM agent (azizanlab/ReverseFlowMatching) on random
batches of the right shapes, without any environment.

The official code is NOT part of this repository. Check it out somewhere outside the project and
point --official (or $RFM_OFFICIAL) at that directory (the one holding `src/agent/rfm.py`).
Needs jax (CPU), flax, optax in the running Python.

Prints one JSON line per config: updates/s (the official fused, jitted update, blocked on
every call like a training loop), action selections/s (the official deterministic
`sample_actions`, one state per call, as in its evaluation loop), median over --repeats runs of
about --seconds each. Settings mirror `rfm bench`: playground = 2x64 nets, emb 32, batch 128,
K 16, 8 candidates, 10 Euler steps; released = 2x256, emb 128, batch 256, K 100, 32 candidates.
"""

import argparse
import json
import os
import statistics
import sys
import time

PRESETS = {
    "playground": dict(hidden=64, emb=32, batch=128, k=16, candidates=8, steps=10),
    "released": dict(hidden=256, emb=128, batch=256, k=100, candidates=32, steps=10),
}


def build(official, cfg, obs_dim, act_dim, seed=0):
    sys.path.insert(0, official)
    from src.agent.rfm import RFM  # noqa: E402  (official code, imported, not copied)

    critic_config = dict(
        state_dim=obs_dim,
        action_dim=act_dim,
        hidden_size=cfg["hidden"],
        hidden_layers=2,
        num_q=2,
        discount=0.99,
        tau=0.005,
        target_update_period=1,
        lr=1e-3,
        max_grad_norm=cfg["clip"],
        seed=seed,
    )
    return RFM(
        sample_dim=act_dim,
        state_dim=obs_dim,
        critic_config=critic_config,
        actor_hidden_size=cfg["hidden"],
        actor_hidden_layers=2,
        actor_emb_size=cfg["emb"],
        actor_lr=3e-4,
        actor_max_grad_norm=cfg["clip"],
        num_estimator_mc_samples=cfg["k"],
        num_integration_steps=cfg["steps"],
        batch_size=cfg["batch"],
        cv_weight=0.0,
        cv_weight_autotune=True,
        cv_ridge=1e-4,
        cv_clip=2.0,
        rfm_on_policy=True,
        init_temperature=0.02,
        final_temperature=0.02,
        temperature_steps=250000,
        num_particles_training=cfg["candidates"],
        num_particles_data=cfg["candidates"],
        num_particles_eval=cfg["candidates"],
        sampler_method="euler",
        t_min=0.01,
        seed=seed,
    )


def rate(seconds, fn):
    start = time.perf_counter()
    items = 0
    while True:
        items += fn()
        el = time.perf_counter() - start
        if el >= seconds:
            return items / el


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--official", default=os.environ.get("RFM_OFFICIAL"))
    p.add_argument("--config", default="both", choices=["playground", "released", "both"])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--obs-dim", type=int, default=3, help="pendulum: 3")
    p.add_argument("--act-dim", type=int, default=1, help="pendulum: 1")
    p.add_argument("--measure", default="updates,actions")
    p.add_argument("--clip", type=float, default=10.0, help="global-norm clip (0: none)")
    p.add_argument(
        "--overrides",
        default="{}",
        help='JSON over the preset: {"batch","k","hidden","emb","candidates","steps"}',
    )
    a = p.parse_args()
    if not a.official or not os.path.isfile(os.path.join(a.official, "src/agent/rfm.py")):
        sys.exit("--official must point at a checkout of the official code (src/agent/rfm.py)")

    import jax
    import jax.numpy as jnp
    import numpy as np

    names = ["playground", "released"] if a.config == "both" else [a.config]
    want = set(a.measure.split(","))
    for name in names:
        cfg = dict(PRESETS[name])
        cfg.update(json.loads(a.overrides))
        cfg["clip"] = a.clip if a.clip > 0 else None
        agent = build(a.official, cfg, a.obs_dim, a.act_dim)
        rng = np.random.default_rng(0)
        b, o, d = cfg["batch"], a.obs_dim, a.act_dim
        batches = [
            (
                jnp.asarray(rng.standard_normal((b, o), dtype=np.float32)),
                jnp.asarray(rng.uniform(-1, 1, (b, d)).astype(np.float32)),
                jnp.asarray(rng.standard_normal((b,), dtype=np.float32)),
                jnp.ones((b,), jnp.float32),
                jnp.asarray(rng.standard_normal((b, o), dtype=np.float32)),
            )
            for _ in range(8)
        ]
        out = dict(
            impl="jax-official",
            config=name,
            obs_dim=o,
            act_dim=d,
            jax=jax.__version__,
            devices=str(jax.devices()),
            repeats=a.repeats,
            seconds=a.seconds,
            **cfg,
        )
        if "updates" in want:
            i = [0]

            def one_update():
                m = agent.update(*batches[i[0] % len(batches)])
                i[0] += 1
                jax.block_until_ready((agent.net_params, agent.critic.Q_online_params, m))
                return 1

            t0 = time.perf_counter()
            one_update()  # jit compile
            out["compile_s"] = time.perf_counter() - t0
            one_update()
            runs = [rate(a.seconds, one_update) for _ in range(a.repeats)]
            out["updates_per_s_runs"] = runs
            out["updates_per_s"] = statistics.median(runs)
        if "actions" in want:
            states = rng.standard_normal((64, o), dtype=np.float32)
            j = [0]

            def one_action():
                agent.sample_actions(states[j[0] % len(states)], deterministic=True)
                j[0] += 1
                return 1

            one_action()
            runs = [rate(a.seconds, one_action) for _ in range(a.repeats)]
            out["actions_per_s_runs"] = runs
            out["actions_per_s"] = statistics.median(runs)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
