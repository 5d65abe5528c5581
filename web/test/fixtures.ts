/** Shared test data (not a test file: importing it runs no tests). */
import type { PlaygroundConfig } from "../src/protocol.ts";

/** An RL config like the crate's page defaults (multigoal, RFM). */
export const CONFIG: PlaygroundConfig = {
  mode: "rl",
  env: "multigoal",
  target: "gmm8",
  agent: "rfm",
  estimator: "rfm",
  param: "flow",
  solver: "euler",
  lambda: 0.1,
  k: 16,
  candidates: 8,
  odeSteps: 10,
  hidden: 64,
  actorLr: 1e-3,
  criticLr: 1e-3,
  batch: 128,
  embWidth: 32,
  warmup: 200,
  warmupNoise: "uniform",
  replay: 50000,
  proposal: "mixture",
  evalEvery: 1000,
  evalEpisodes: 3,
  steps: 0,
  seed: 0,
  seeds: 1,
};
