/**
 * Messages between the page and the training worker. Discriminated by `type`; every request
 * carries an `id` that its reply echoes (`error` replies too), and the page keeps one request
 * in flight at a time. Shapes mirror the serde types of the Rust crate (camelCase): the Rust
 * side (crate/src/config.rs, crate/src/session.rs, crate/src/wasm.rs) is the source of truth.
 */

/** Backend the user asks for. */
export type BackendChoice = "auto" | "cpu" | "webgpu";

/** `rfm_playground::device::DeviceInfo`. */
export interface DeviceInfo {
  kind: "cpu" | "webgpu";
  adapter: string;
  fallbackReason: string | null;
}

// ---------------------------------------------------------------------------------------
// The experiment config: ONE type, validated in Rust, serialised into share links.
// ---------------------------------------------------------------------------------------

export type Mode = "rl" | "sampler";
export type EnvName = "pendulum" | "mountain-car" | "multigoal";
export type TargetName = "gmm8" | "two-moons" | "rings" | "gmm40";
/** RL agent: the RFM flow policy or the Gaussian SAC baseline. */
export type Agent = "rfm" | "sac";
/** Posterior-mean estimator: optimal control variate, noise, gradient, or a fixed η in [0,1]. */
export type EstimatorName = "rfm" | "noise" | "grad" | `eta:${string}`;
export type Parameterisation = "flow" | "diffusion";
export type Solver = "euler" | "heun";

/** `rfm_playground::config::PlaygroundConfig` (share-link payload). */
export interface PlaygroundConfig {
  mode: Mode;
  env: EnvName;
  target: TargetName;
  agent: Agent;
  estimator: EstimatorName;
  param: Parameterisation;
  solver: Solver;
  /** Temperature λ of the Boltzmann target exp(Q/λ) (sampler: exp(-E/λ)). */
  lambda: number;
  /** Posterior samples K per estimate. */
  k: number;
  /** Action candidates per state when acting. */
  candidates: number;
  odeSteps: number;
  /** Hidden width of every network. */
  hidden: number;
  actorLr: number;
  criticLr: number;
  batch: number;
  seed: number;
}

/** One field's problem, e.g. `{field: "k", value: "0", range: "1..=10000", message: "…"}`. */
export interface FieldError {
  field: string;
  value: string;
  range: string;
  message: string;
}

/**
 * One control of the Experiment card (`describeSpec()` in the crate). Until the crate's
 * generated types land under web/src/generated/, this mirrors the agreed shape.
 */
export interface FieldInfo {
  /** The `PlaygroundConfig` field. */
  key: string;
  label: string;
  /** One short line shown under the control. */
  help: string;
  control: "select" | "number";
  /** select: stable value (what the config holds) and label. */
  options: { value: string; label: string }[];
  min: number | null;
  max: number | null;
  integer: boolean;
  /** Spaced logarithmically (a log slider next to the number). */
  log: boolean;
  /** The modes it applies to. */
  modes: Mode[];
  /** In RL, the agents it applies to. */
  agents: Agent[];
}

/** A panel of the page that the experiment may not have (e.g. SAC has no flow paths). */
export type PanelName = "density" | "paths" | "variance" | "ess" | "env";

/** `Session.panels()`: whether a panel applies to this experiment, and if not, why (plain words). */
export interface PanelStatus {
  panel: PanelName;
  available: boolean;
  reason: string | null;
}

// ---------------------------------------------------------------------------------------
// What the worker reports.
// ---------------------------------------------------------------------------------------

/** One point of the learning curves; absent fields were not measured at that step. */
export interface MetricPoint {
  /** RL: env steps; sampler: updates. */
  step: number;
  episodeReturn?: number;
  evalReturn?: number;
  criticLoss?: number;
  actorLoss?: number;
  ess?: number;
}

/** `rfm_playground::envs::EnvSnapshot` (tagged by `env`). */
export type EnvSnapshot =
  | { env: "pendulum"; theta: number; thetaDot: number; lastU: number | null; maxTorque: number; length: number; step: number }
  | {
      env: "mountain-car";
      position: number;
      velocity: number;
      height: number;
      minPosition: number;
      maxPosition: number;
      goalPosition: number;
      goalHeight: number;
      track: [number, number][];
      /** Null after a reset (no force applied yet). */
      lastForce: number | null;
      step: number;
    }
  | {
      env: "multigoal";
      position: [number, number];
      trajectory: [number, number][];
      goals: [number, number][];
      goalRadius: number;
      xlim: [number, number];
      ylim: [number, number];
      /** Null after a reset (no action taken yet). */
      lastAction: [number, number] | null;
      step: number;
    };

/** `rfm_playground::session::FaultKind`: what paused training. */
export type FaultKind = "nan-q" | "nan-weights" | "ess-collapse" | "exploding-targets" | "device-lost";

/** After `step`: new curve points since the last report, the env to draw, throughput. */
export interface StepReport {
  /** Total steps so far (RL: env steps; sampler: updates). */
  step: number;
  points: MetricPoint[];
  env: EnvSnapshot | null;
  /** Updates per second over this batch of steps. */
  updatesPerSec: number;
  /** Non-null when training paused itself (NaN, ESS collapse…); the last good weights are restored. */
  fault: string | null;
  faultKind: FaultKind | null;
  /** The device failed; the worker has already rebuilt the experiment on the CPU (see `fallback`). */
  deviceLost: boolean;
  /** Set when the worker moved the experiment to the CPU: the new device and the step it went on from. */
  fallback?: { device: DeviceInfo; step: number };
}

/** A grid over the action space (agent units, [-1,1]^d in RL; the target's box in sampler mode). */
export interface Grid {
  /** 1 or 2. */
  dims: number;
  x: { min: number; max: number; n: number };
  /** Present when dims = 2. */
  y?: { min: number; max: number; n: number };
}

/**
 * Policy density vs target at one state. `policy` and `target` are probability masses per
 * cell (each sums to 1), row-major with x fastest: length x.n (1-D) or x.n * y.n (2-D).
 */
export interface DensityView {
  grid: Grid;
  policy: number[];
  target: number[];
  /** KL(target ‖ policy) on the grid, in nats. */
  kl: number;
  /**
   * KL(target ‖ uniform) on the same grid: what a policy that knows nothing scores against this
   * target. In RL the target sharpens as the critic learns, so this is the yardstick there.
   */
  klUniform: number;
  /** The state it was computed at (RL), or null (sampler). */
  state: number[] | null;
}

/** Where to look at the density. RL: a state in the env's observation-defining internal state
 *  (pendulum [θ, θdot], mountain-car [position, velocity], multigoal [x, y]). Sampler: none. */
export interface DensityQuery {
  state?: number[];
  /** Policy samples to histogram. */
  samples?: number;
}

/** Sample paths of the flow from noise (t = 0) to action (t = 1): `paths[i][j]` is the point
 *  (length d) of path i at time `t[j]` (already squashed by tanh in RL). */
export interface FlowPaths {
  t: number[];
  paths: number[][][];
}

/** Estimator variance vs t (trace of the covariance of repeated estimates) per estimator. */
export interface VarianceCurve {
  t: number[];
  byEstimator: Record<string, number[]>;
}

// ---------------------------------------------------------------------------------------
// Messages.
// ---------------------------------------------------------------------------------------

export type Request =
  | { type: "init"; id: number; config: PlaygroundConfig; backend: BackendChoice }
  | { type: "step"; id: number; steps: number }
  | { type: "density"; id: number; query: DensityQuery }
  | { type: "paths"; id: number; count: number; state?: number[] }
  | { type: "variance"; id: number; state?: number[] }
  | { type: "validate"; id: number; config: unknown }
  | { type: "encodeShare"; id: number; config: PlaygroundConfig }
  | { type: "decodeShare"; id: number; fragment: string }
  /** The full default config of a mode (`defaultSpec(mode)`). */
  | { type: "defaults"; id: number; mode: Mode }
  /** What every control is (`describeSpec()`). */
  | { type: "describe"; id: number }
  | { type: "saveWeights"; id: number }
  | { type: "loadWeights"; id: number; bytes: ArrayBuffer }
  /** Load weights and continue at their step count (autosave, or weights carried past a fault). */
  | { type: "resume"; id: number; bytes: ArrayBuffer }
  /** Test hook: the next `step` meets this fault. */
  | { type: "injectFault"; id: number; kind: FaultKind }
  | { type: "probe"; id: number; backend: BackendChoice; config?: Partial<ProbeConfig> };

export type Reply =
  | { type: "ready" }
  /** Sent every second while the worker's event loop runs (the page's watchdog listens). */
  | { type: "heartbeat" }
  | { type: "initialized"; id: number; device: DeviceInfo; config: PlaygroundConfig; panels: PanelStatus[] }
  | { type: "stepped"; id: number; report: StepReport }
  | { type: "density"; id: number; density: DensityView }
  | { type: "paths"; id: number; paths: FlowPaths }
  | { type: "variance"; id: number; curve: VarianceCurve }
  | { type: "validated"; id: number; errors: FieldError[] }
  | { type: "shared"; id: number; fragment: string }
  | { type: "decoded"; id: number; config: PlaygroundConfig }
  | { type: "defaults"; id: number; config: PlaygroundConfig }
  | { type: "described"; id: number; fields: FieldInfo[] }
  | { type: "weights"; id: number; bytes: ArrayBuffer }
  | { type: "weightsLoaded"; id: number }
  | { type: "resumed"; id: number; step: number }
  | { type: "faultInjected"; id: number }
  | { type: "probeResult"; id: number; report: ProbeReport; millis: number }
  | { type: "error"; id: number | null; message: string; fields?: FieldError[] };

// ---------------------------------------------------------------------------------------
// The pipeline probe (walking skeleton).
// ---------------------------------------------------------------------------------------

/** `rfm_playground::probe::ProbeConfig`. */
export interface ProbeConfig {
  steps: number;
  hidden: number;
  points: number;
  lr: number;
  seed: number;
}

/** `rfm_playground::probe::ProbeReport`. */
export interface ProbeReport {
  device: DeviceInfo;
  losses: number[];
  initialLoss: number;
  finalLoss: number;
}

/** The wasm module's exports the worker uses (generated by wasm-bindgen from `crate/src/wasm.rs`). */
export interface WasmApi {
  default: (input?: unknown) => Promise<unknown>;
  selectDevice(backend: string): Promise<DeviceInfo>;
  runProbe(backend: string, config: unknown): Promise<ProbeReport>;
}
