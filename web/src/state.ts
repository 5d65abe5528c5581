/**
 * The page's state: the experiment config (a `PlaygroundConfig`, validated by the worker and
 * carried in share links) plus UI-only settings (backend, speed, where to look at the density).
 *
 * The controls themselves (labels, ranges, choices, which mode and agent each applies to) come
 * from the crate (`describeSpec()`, see controls.ts); the worker's `validate` is the authority
 * on what is allowed.
 */
import type { BackendChoice, EnvName, EstimatorName, FieldInfo, PlaygroundConfig } from "./protocol";

/** The estimator choice without its η ("eta:0.5" → "eta"). */
export type EstimatorKind = "rfm" | "noise" | "grad" | "eta";

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

}

/** Whether a control applies to a config: its mode, and in RL its agent (FieldInfo.modes/agents). */
export function fieldApplies(f: Pick<FieldInfo, "modes" | "agents">, config: Pick<PlaygroundConfig, "mode" | "agent">): boolean {
  if (!f.modes.includes(config.mode)) return false;
  return config.mode !== "rl" || f.agents.includes(config.agent);
}

/**
 * The config a mode switch brings: that mode's defaults for every field, except the seed and
 * the number of seeds at once,
 * which is kept. Returns it with the fields whose value changed beyond `mode`.
 */
export function switchMode(current: PlaygroundConfig, modeDefaults: PlaygroundConfig): { config: PlaygroundConfig; changed: (keyof PlaygroundConfig)[] } {
  const config = { ...modeDefaults, seed: current.seed, seeds: current.seeds };
  return { config, changed: changedFields(current, config).filter((k) => k !== "mode") };
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
