/**
 * The page's state: the experiment config (a `PlaygroundConfig`, validated by the worker and
 * carried in share links) plus UI-only settings (backend, speed, where to look at the density).
 *
 * One `PROPS` row per config field drives the controls (label, kind, choices, slider range)
 * and the parsing of what the user typed. Ranges here are only slider hints; the worker's
 * `validate` is the authority on what is allowed.
 */
import type { BackendChoice, EnvName, EstimatorName, Mode, PlaygroundConfig } from "./protocol";

export type PropKind = "select" | "number" | "log" | "int";

export interface Prop {
  /** The config field. */
  name: keyof PlaygroundConfig;
  label: string;
  kind: PropKind;
  /** Fieldset it belongs to in the controls. */
  group: "task" | "agent" | "flow" | "training";
  /** select: the stable names that go into the config. */
  options?: readonly string[];
  /** number/log/int: slider range (log: in value units, spaced logarithmically). */
  min?: number;
  max?: number;
  /** One short line shown under the control. */
  help: string;
  /** Shown only in this mode (absent: always). */
  onlyIn?: Mode;
}

/** The estimator choice without its η ("eta:0.5" → "eta"). */
export type EstimatorKind = "rfm" | "noise" | "grad" | "eta";

export const PROPS: readonly Prop[] = [
  { name: "mode", label: "Mode", kind: "select", group: "task", options: ["rl", "sampler"], help: "RL on a control task, or fit a known 2-D density." },
  { name: "env", label: "Environment", kind: "select", group: "task", options: ["multigoal", "pendulum", "mountain-car"], help: "The control task.", onlyIn: "rl" },
  { name: "target", label: "Target density", kind: "select", group: "task", options: ["gmm8", "two-moons", "rings", "gmm40"], help: "The energy to sample from.", onlyIn: "sampler" },
  { name: "agent", label: "Agent", kind: "select", group: "agent", options: ["rfm", "sac"], help: "Flow policy (RFM) or the Gaussian SAC baseline.", onlyIn: "rl" },
  { name: "estimator", label: "Estimator", kind: "select", group: "agent", options: ["rfm", "noise", "grad", "eta"], help: "How the posterior mean is estimated." },
  { name: "lambda", label: "Temperature λ", kind: "log", group: "agent", min: 1e-3, max: 10, help: "Target ∝ exp(Q/λ): small λ is greedy, large λ is spread out." },
  { name: "k", label: "Posterior samples K", kind: "int", group: "agent", min: 1, max: 1000, help: "Samples per estimate." },
  { name: "candidates", label: "Action candidates", kind: "int", group: "agent", min: 1, max: 256, help: "Particles drawn per state when acting.", onlyIn: "rl" },
  { name: "param", label: "Parameterisation", kind: "select", group: "flow", options: ["flow", "diffusion"], help: "Velocity (flow) or noise (diffusion) network." },
  { name: "solver", label: "ODE solver", kind: "select", group: "flow", options: ["euler", "heun"], help: "Integrator from noise to action." },
  { name: "odeSteps", label: "ODE steps", kind: "int", group: "flow", min: 1, max: 100, help: "Integration steps from t=0 to t=1." },
  { name: "hidden", label: "Hidden width", kind: "int", group: "flow", min: 8, max: 512, help: "Units per hidden layer of every network." },
  { name: "actorLr", label: "Actor learning rate", kind: "log", group: "training", min: 1e-5, max: 1e-1, help: "Adam step size of the policy." },
  { name: "criticLr", label: "Critic learning rate", kind: "log", group: "training", min: 1e-5, max: 1e-1, help: "Adam step size of the twin critic.", onlyIn: "rl" },
  { name: "batch", label: "Batch size", kind: "int", group: "training", min: 1, max: 1024, help: "Samples per update." },
  { name: "seed", label: "Seed", kind: "int", group: "training", min: 0, max: 2 ** 31 - 1, help: "Same seed, same run." },
];

export function prop(name: keyof PlaygroundConfig): Prop {
  const p = PROPS.find((q) => q.name === name);
  if (!p) throw new Error(`no PROPS row for ${String(name)}`);
  return p;
}

/** Split an estimator name: `"eta:0.25"` → `{kind: "eta", eta: 0.25}`. */
export function splitEstimator(e: string): { kind: EstimatorKind; eta: number } {
  if (e.startsWith("eta:")) return { kind: "eta", eta: Number(e.slice(4)) };
  return { kind: e as EstimatorKind, eta: e === "grad" ? 1 : e === "noise" ? 0 : 0.5 };
}

/** The inverse of `splitEstimator`. η is written with at most 3 decimals. */
export function joinEstimator(kind: EstimatorKind, eta: number): EstimatorName {
  if (kind !== "eta") return kind;
  return `eta:${Number.isFinite(eta) ? String(Math.round(eta * 1000) / 1000) : String(eta)}`;
}

/**
 * Parse what the user typed for a numeric field. Returns NaN for anything that is not a
 * plain number, which the controls reject inline ("not a number") before asking the worker.
 */
export function parseNumber(text: string): number {
  const t = text.trim();
  if (t === "" || !/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(t)) return Number.NaN;
  return Number(t);
}

/** Log-slider position in [0, 1000] ↔ value in [min, max]. */
export function logToSlider(value: number, min: number, max: number): number {
  if (!(value > 0)) return 0;
  const p = (Math.log(value) - Math.log(min)) / (Math.log(max) - Math.log(min));
  return Math.round(Math.min(1, Math.max(0, p)) * 1000);
}

/** Inverse of `logToSlider`, rounded to 3 significant digits. */
export function sliderToLog(pos: number, min: number, max: number): number {
  const v = Math.exp(Math.log(min) + (pos / 1000) * (Math.log(max) - Math.log(min)));
  return Number(v.toPrecision(3));
}

/** The state (in env units) the density panel looks at, per env, with its slider ranges. */
export interface StateAxis {
  label: string;
  min: number;
  max: number;
  step: number;
}

export const STATE_AXES: Record<EnvName, [StateAxis, StateAxis]> = {
  pendulum: [
    { label: "angle θ (rad, 0 = upright)", min: -Math.PI, max: Math.PI, step: 0.01 },
    { label: "angular velocity θ̇ (rad/s)", min: -8, max: 8, step: 0.05 },
  ],
  "mountain-car": [
    { label: "position", min: -1.2, max: 0.6, step: 0.01 },
    { label: "velocity", min: -0.07, max: 0.07, step: 0.001 },
  ],
  multigoal: [
    { label: "x (or click the plane)", min: -7, max: 7, step: 0.05 },
    { label: "y (or click the plane)", min: -7, max: 7, step: 0.05 },
  ],
};

export const DEFAULT_PROBE_STATE: Record<EnvName, [number, number]> = {
  pendulum: [Math.PI, 0],
  "mountain-car": [-0.5, 0],
  multigoal: [0, 0],
};

export const SPEEDS = [1, 5, 10, 25, 50, 100, 250] as const;

/** Everything the page remembers. The config half is what share links carry. */
export class State {
  config: PlaygroundConfig;
  backend: BackendChoice = "auto";
  /** Training steps per `step` request. */
  speed: number = 10;
  /** Where the density/paths/variance are evaluated, per env (env units). */
  probeState: Record<EnvName, [number, number]> = {
    pendulum: [...DEFAULT_PROBE_STATE.pendulum],
    "mountain-car": [...DEFAULT_PROBE_STATE["mountain-car"]],
    multigoal: [...DEFAULT_PROBE_STATE.multigoal],
  };
  presenter = false;

  constructor(config: PlaygroundConfig) {
    this.config = { ...config };
  }

  /** The state to query the density at: null in sampler mode. */
  queryState(): number[] | null {
    if (this.config.mode === "sampler") return null;
    return [...this.probeState[this.config.env]];
  }

  /** Whether a control is shown for the current mode. */
  visible(p: Prop): boolean {
    return p.onlyIn === undefined || p.onlyIn === this.config.mode;
  }
}

/** The share fragment from `location.hash` ("#abc" → "abc"; "" or "#" → null). Percent-escapes
 *  that a browser or chat app added are undone; a broken escape is passed on as typed. */
export function fragmentFromHash(hash: string): string | null {
  let f = hash.startsWith("#") ? hash.slice(1) : hash;
  try {
    f = decodeURIComponent(f);
  } catch {
    // Not valid percent-encoding: let the worker judge the raw text.
  }
  return f.length > 0 ? f : null;
}

/** Config fields that differ between two configs (used to tell the user what a preset set). */
export function changedFields(a: PlaygroundConfig, b: PlaygroundConfig): (keyof PlaygroundConfig)[] {
  return (Object.keys(a) as (keyof PlaygroundConfig)[]).filter((k) => a[k] !== b[k]);
}
