/**
 * STOPGAP, to delete when the crate exports `describeSpec()` and `defaultSpec(mode)`: what the
 * worker answers with a core built before those exports existed. The crate is the source of
 * truth for every label, range and option; this copy only keeps older builds usable.
 */
import type { FieldInfo, Mode, PlaygroundConfig } from "./protocol";

const both: Mode[] = ["rl", "sampler"];
const rfmOnly = ["rfm"] as FieldInfo["agents"];
const all = ["rfm", "sac"] as FieldInfo["agents"];
const opt = (pairs: [string, string][]) => pairs.map(([value, label]) => ({ value, label }));
const field = (f: Partial<FieldInfo> & Pick<FieldInfo, "key" | "label" | "help">): FieldInfo => ({
  control: "number",
  options: [],
  min: null,
  max: null,
  integer: false,
  log: false,
  modes: both,
  agents: all,
  ...f,
});

export const FALLBACK_FIELDS: FieldInfo[] = [
  field({ key: "mode", label: "Mode", control: "select", help: "RL on a control task, or fit a known 2-D density.", options: opt([["rl", "RL (control task)"], ["sampler", "Sampler (known density)"]]) }),
  field({ key: "env", label: "Environment", control: "select", help: "The control task.", modes: ["rl"], options: opt([["multigoal", "Multigoal plane"], ["pendulum", "Pendulum"], ["mountain-car", "Mountain car"]]) }),
  field({ key: "target", label: "Target density", control: "select", help: "The energy to sample from.", modes: ["sampler"], options: opt([["gmm8", "8 Gaussians"], ["two-moons", "Two moons"], ["rings", "Rings"], ["gmm40", "40 Gaussians"]]) }),
  field({ key: "agent", label: "Agent", control: "select", help: "Flow policy (RFM) or the Gaussian SAC baseline.", modes: ["rl"], options: opt([["rfm", "RFM"], ["sac", "SAC (Gaussian)"]]) }),
  field({ key: "estimator", label: "Estimator", control: "select", help: "How the posterior mean is estimated.", agents: rfmOnly, options: opt([["rfm", "RFM"], ["noise", "Noise (η = 0)"], ["grad", "Gradient (η = 1)"], ["eta", "Fixed η…"]]) }),
  field({ key: "lambda", label: "Temperature λ", help: "Target ∝ exp(Q/λ): small λ is greedy, large λ is spread out.", min: 1e-3, max: 10, log: true }),
  field({ key: "k", label: "Posterior samples K", help: "Samples per estimate.", min: 1, max: 1000, integer: true, agents: rfmOnly }),
  field({ key: "candidates", label: "Action candidates", help: "Particles drawn per state when acting.", min: 1, max: 256, integer: true, modes: ["rl"], agents: rfmOnly }),
  field({ key: "param", label: "Parameterisation", control: "select", help: "Velocity (flow) or noise (diffusion) network.", agents: rfmOnly, options: opt([["flow", "Flow (velocity)"], ["diffusion", "Diffusion (noise)"]]) }),
  field({ key: "solver", label: "ODE solver", control: "select", help: "Integrator from noise to action.", agents: rfmOnly, options: opt([["euler", "Euler"], ["heun", "Heun"]]) }),
  field({ key: "odeSteps", label: "ODE steps", help: "Integration steps from t=0 to t=1.", min: 1, max: 100, integer: true, agents: rfmOnly }),
  field({ key: "hidden", label: "Hidden width", help: "Units per hidden layer of every network.", min: 8, max: 512, integer: true }),
  field({ key: "actorLr", label: "Actor learning rate", help: "Adam step size of the policy.", min: 1e-5, max: 1e-1, log: true }),
  field({ key: "criticLr", label: "Critic learning rate", help: "Adam step size of the twin critic.", min: 1e-5, max: 1e-1, log: true, modes: ["rl"] }),
  field({ key: "batch", label: "Batch size", help: "Samples per update.", min: 1, max: 1024, integer: true }),
  field({ key: "seed", label: "Seed", help: "Same seed, same run.", min: 0, max: 2 ** 31 - 1, integer: true }),
];

/** A core without `defaultSpec` has one default config; the mode is set on it. */
export function fallbackDefaults(base: PlaygroundConfig, mode: Mode): PlaygroundConfig {
  return { ...base, mode };
}
