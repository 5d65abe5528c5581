// Generated from the Rust serde types by ts-rs (crate/src/contract.rs). Do not edit:
// regenerate with `RFM_WRITE_GENERATED=1 cargo test -p rfm-playground contract`.

/**
 * What the page asks the worker.
 */
export type Request = { "type": "init", id: number, config: ExperimentSpec, backend: BackendChoice, } | { "type": "open", id: number, bytes: ArrayBuffer, backend: BackendChoice, } | { "type": "step", id: number, steps: number, } | { "type": "density", id: number, query: DensityQuery, } | { "type": "paths", id: number, count: number, state?: Array<number>, } | { "type": "variance", id: number, state?: Array<number>, } | { "type": "validate", id: number, config: unknown, } | { "type": "encodeShare", id: number, config: ExperimentSpec, } | { "type": "decodeShare", id: number, fragment: string, } | { "type": "defaults", id: number, mode: Mode, } | { "type": "describe", id: number, } | { "type": "saveWeights", id: number, } | { "type": "resume", id: number, bytes: ArrayBuffer, } | { "type": "injectFault", id: number, kind: FaultKind, } | { "type": "probe", id: number, backend: BackendChoice, config?: ProbeConfig, };

/**
 * What the worker answers (each reply echoes its request's `id` and type).
 */
export type Reply = { "type": "ready", module: string, } | { "type": "heartbeat" } | { "type": "init", id: number, device: DeviceInfo, config: ExperimentSpec, panels: Array<PanelStatus>, } | { "type": "open", id: number, device: DeviceInfo, config: ExperimentSpec, panels: Array<PanelStatus>, step: number, } | { "type": "step", id: number, report: StepReport, } | { "type": "density", id: number, density: DensityView, } | { "type": "paths", id: number, paths: FlowPaths, } | { "type": "variance", id: number, curve: VarianceCurve, } | { "type": "validate", id: number, errors: Array<FieldError>, } | { "type": "encodeShare", id: number, fragment: string, } | { "type": "decodeShare", id: number, config: ExperimentSpec, } | { "type": "defaults", id: number, config: ExperimentSpec, } | { "type": "describe", id: number, fields: Array<FieldInfo>, } | { "type": "saveWeights", id: number, bytes: ArrayBuffer, } | { "type": "resume", id: number, step: number, } | { "type": "injectFault", id: number, } | { "type": "probe", id: number, report: ProbeReport, millis: number, } | { "type": "error", id: number | null, message: string, fields?: Array<FieldError>, };

/**
 * What the user asked for.
 */
export type BackendChoice = "auto" | "cpu" | "webgpu";

/**
 * What actually runs.
 */
export type BackendKind = "cpu" | "webgpu";

/**
 * A description of the device for people: shown in the page and printed by the CLI.
 */
export type DeviceInfo = { kind: BackendKind, 
/**
 * Adapter description, e.g. `"flex (pure-Rust CPU)"` or the WebGPU adapter's vendor/name.
 */
adapter: string, 
/**
 * Why WebGPU was not used, when `Auto` fell back to the CPU.
 */
fallbackReason: string | null, };

/**
 * One experiment, as the page shows it, the share link carries it and the CLI runs it.
 * Field ranges live in [`fields::FIELDS`]; defaults in [`ExperimentSpec::defaults`].
 */
export type ExperimentSpec = { 
/**
 * `rl` or `sampler`.
 */
mode: Mode, 
/**
 * RL task.
 */
env: EnvName, 
/**
 * Sampler target.
 */
target: TargetName, 
/**
 * RL agent.
 */
agent: Agent, 
/**
 * Posterior-mean estimator by name: `rfm` (the paper's control variate), `noise`, `grad`,
 * `cv-iso`, `cv-pool`, or `eta:X` with X in [0, 1].
 */
estimator: string, 
/**
 * `flow` (velocity, linear path) or `diffusion` (noise, VP path).
 */
param: Parameterisation, 
/**
 * ODE solver of the sampler.
 */
solver: Solver, 
/**
 * Temperature λ of exp(Q/λ) (sampler: exp(-E/λ)).
 */
lambda: number, 
/**
 * Posterior samples K per estimate.
 */
k: number, 
/**
 * Action candidates per state when acting (RL).
 */
candidates: number, 
/**
 * ODE steps from noise to action.
 */
odeSteps: number, 
/**
 * Hidden width of every network.
 */
hidden: number, 
/**
 * Width of each sinusoidal embedding (time, λ) of the policy net.
 */
embWidth: number, 
/**
 * Actor (policy) Adam learning rate.
 */
actorLr: number, 
/**
 * Critic Adam learning rate (RL).
 */
criticLr: number, 
/**
 * Rows per update.
 */
batch: number, 
/**
 * RL: env steps with random actions before the first update.
 */
warmup: number, 
/**
 * RL: the warm-up's random actions: `uniform` (independent draws, the released code) or
 * `pink` (temporally correlated noise that keeps a push going for tens of steps).
 */
warmupNoise: WarmupNoise, 
/**
 * RL: replay capacity in transitions.
 */
replay: number, 
/**
 * Where the posterior candidates come from (`prior` or `mixture`).
 */
proposal: ProposalName, 
/**
 * RL: env steps between greedy evaluations (0: never).
 */
evalEvery: number, 
/**
 * RL: episodes per greedy evaluation.
 */
evalEpisodes: number, 
/**
 * Steps to run (RL: env steps; sampler: updates, also the learning-rate schedule's
 * horizon). 0: until paused (the page); the CLI needs a number.
 */
steps: number, 
/**
 * Seed of every random draw (exact in JavaScript up to 2^53 − 1).
 */
seed: number, 
/**
 * Independent runs of this experiment trained side by side, seeds `seed`, `seed + 1`, …
 * (the curves and the density show their spread; `session::seeds`). 1: one run.
 */
seeds: number, };

/**
 * What the playground trains.
 */
export type Mode = "rl" | "sampler";

/**
 * The environments this crate knows, by their stable names (`pendulum`, `mountain-car`,
 * `multigoal`), used in the CLI, configs and the URL.
 */
export type EnvName = "pendulum" | "mountain-car" | "multigoal";

/**
 * A sampler-mode target by its stable name.
 */
export type TargetName = "gmm8" | "two-moons" | "rings" | "gmm40";

/**
 * The learning agent.
 */
export type Agent = "rfm" | "sac";

/**
 * Where the posterior estimator's candidates come from (both modes).
 */
export type ProposalName = "prior" | "mixture";

/**
 * The warm-up's action noise (spec field `warmupNoise`).
 */
export type WarmupNoise = "uniform" | "pink";

/**
 * What the network's output means.
 */
export type Parameterisation = "flow" | "diffusion";

/**
 * ODE solver for sampling.
 */
export type Solver = "euler" | "heun";

/**
 * One field's problem.
 */
export type FieldError = { 
/**
 * The field's name as in the JSON/URL (camelCase).
 */
field: string, value: string, 
/**
 * The allowed values, e.g. `"1..=1000"` or `"(0, 1000]"`.
 */
range: string, 
/**
 * One plain-language line.
 */
message: string, };

/**
 * What the page needs to draw one control (see [`describe`]).
 */
export type FieldInfo = { 
/**
 * The spec's key (camelCase), e.g. `lambda`.
 */
key: string, label: string, 
/**
 * One plain-language line (a tooltip).
 */
help: string, control: Control, 
/**
 * Select only (empty otherwise).
 */
options: Array<FieldOption>, 
/**
 * Number only: the allowed range (inclusive unless `minOpen`).
 */
min: number | null, max: number | null, 
/**
 * The lower bound is excluded (λ > 0).
 */
minOpen: boolean, integer: boolean, 
/**
 * A log-scale quantity (learning rates, λ).
 */
log: boolean, 
/**
 * Where the field applies.
 */
modes: Array<Mode>, 
/**
 * In RL, the agents it applies to.
 */
agents: Array<Agent>, 
/**
 * Shown under "advanced" (the page may fold these away).
 */
advanced: boolean, };

/**
 * One option of a select.
 */
export type FieldOption = { value: string, label: string, };

/**
 * How the page edits a field.
 */
export type Control = "select" | "number";

/**
 * After `step`: the session's batch plus what the worker measured.
 */
export type StepReport = { 
/**
 * Steps per second over this batch.
 */
updatesPerSec: number, 
/**
 * Set when the worker moved the experiment to the CPU after a lost device.
 */
fallback?: Fallback, 
/**
 * Total steps so far (RL: env steps; sampler: updates).
 */
step: number, 
/**
 * New curve points since the last batch, every seed's (each step's in seed order).
 */
points: Array<MetricPoint>, 
/**
 * The env to draw (RL), else `None`.
 */
env: EnvSnapshot | null, 
/**
 * `Some(message)` when training paused itself; the last good weights are kept.
 */
fault: string | null, 
/**
 * What kind of fault paused training (`None` when `fault` is).
 */
faultKind: FaultKind | null, 
/**
 * The device failed (e.g. the WebGPU device was lost): call
 * [`Session::fall_back_to_cpu`] to continue from the last snapshot.
 */
deviceLost: boolean, 
/**
 * The spec's step budget (`steps`) is used up: further batches do nothing.
 */
finished: boolean, };

/**
 * The new device and the step the experiment went on from.
 */
export type Fallback = { device: DeviceInfo, step: number, };

/**
 * What a batch of steps produced.
 */
export type StepBatch = { 
/**
 * Total steps so far (RL: env steps; sampler: updates).
 */
step: number, 
/**
 * New curve points since the last batch, every seed's (each step's in seed order).
 */
points: Array<MetricPoint>, 
/**
 * The env to draw (RL), else `None`.
 */
env: EnvSnapshot | null, 
/**
 * `Some(message)` when training paused itself; the last good weights are kept.
 */
fault: string | null, 
/**
 * What kind of fault paused training (`None` when `fault` is).
 */
faultKind: FaultKind | null, 
/**
 * The device failed (e.g. the WebGPU device was lost): call
 * [`Session::fall_back_to_cpu`] to continue from the last snapshot.
 */
deviceLost: boolean, 
/**
 * The spec's step budget (`steps`) is used up: further batches do nothing.
 */
finished: boolean, };

/**
 * One point of the learning curves (absent = not measured at that step).
 */
export type MetricPoint = { 
/**
 * RL: env steps; sampler: updates.
 */
step: number, 
/**
 * Which of the experiment's seeds (the spec's `seeds`) this point is of: 0 is the spec's
 * own `seed`, `i` is `seed + i`. Absent: 0.
 */
seedIndex?: number, 
/**
 * The return of the training episode that ended at this step.
 */
episodeReturn?: number, 
/**
 * Mean return of the greedy evaluation taken at this step (every `evalEvery` steps).
 */
evalReturn?: number, criticLoss?: number, actorLoss?: number, 
/**
 * Mean effective sample size of the posterior estimator (out of K).
 */
ess?: number, };

/**
 * The kinds of fault the session detects (and the tests inject, see [`super::inject`]).
 */
export type FaultKind = "nan-q" | "nan-weights" | "ess-collapse" | "exploding-targets" | "device-lost";

/**
 * Whether `panel` applies, and if not, why (one plain line for the page).
 */
export type PanelStatus = { panel: Panel, available: boolean, reason: string | null, };

/**
 * A panel of the page and whether it applies to this experiment.
 */
export type Panel = "density" | "paths" | "variance" | "ess" | "env";

/**
 * What [`Env::snapshot`] returns: one variant per environment, tagged `"env"` with the
 * environment's name (`{"env": "pendulum", "theta": …}`).
 */
export type EnvSnapshot = { "env": "pendulum" } & PendulumSnapshot | { "env": "mountain-car" } & MountainCarSnapshot | { "env": "multigoal" } & MultigoalSnapshot;

/**
 * What the UI draws: the angle (0 = upright, counter-clockwise positive), the last torque.
 */
export type PendulumSnapshot = { 
/**
 * θ in radians, unwrapped.
 */
theta: number, 
/**
 * θdot in rad/s.
 */
thetaDot: number, 
/**
 * Last applied torque in N m (clipped), `null` right after a reset.
 */
lastU: number | null, maxTorque: number, 
/**
 * Rod length in m.
 */
length: number, 
/**
 * Steps taken in this episode.
 */
step: number, };

/**
 * What the UI draws: the car on the track, the flag, and the last force.
 */
export type MountainCarSnapshot = { position: number, velocity: number, 
/**
 * `height(position)`: where the car sits.
 */
height: number, minPosition: number, maxPosition: number, goalPosition: number, 
/**
 * `height(goal_position)`: the flag's foot.
 */
goalHeight: number, 
/**
 * `[x, height(x)]` at `TRACK_POINTS` evenly spaced `x` from `min_position` to `max_position`.
 */
track: Array<[number, number]>, 
/**
 * Last applied force in `[-1, 1]`, `null` right after a reset.
 */
lastForce: number | null, 
/**
 * Steps taken in this episode.
 */
step: number, };

/**
 * What the UI draws: the point, its recent path, the goals with their radius, the bounds.
 */
export type MultigoalSnapshot = { position: [number, number], 
/**
 * Positions since the episode began, oldest first, at most `TRAJECTORY_CAP`.
 */
trajectory: Array<[number, number]>, goals: Array<[number, number]>, 
/**
 * Goal radius: ending a step inside it terminates.
 */
goalRadius: number, xlim: [number, number], ylim: [number, number], 
/**
 * Last applied velocity (clipped), `null` right after a reset.
 */
lastAction: [number, number] | null, 
/**
 * Steps taken in this episode.
 */
step: number, };

/**
 * Where to look at the density. RL: an internal env state (pendulum `[θ, θdot]`, mountain car
 * `[position, velocity]`, multigoal `[x, y]`); sampler: none.
 */
export type DensityQuery = { state?: Array<number>, 
/**
 * Policy samples to histogram (per seed).
 */
samples?: number, 
/**
 * Which seed to show (index; 0, the spec's own seed, when absent).
 */
seed?: number, 
/**
 * Pool every seed instead (the spec's `seeds` > 1): mean histograms, each seed's KL.
 */
allSeeds?: boolean, };

/**
 * Policy density beside its target on a grid: masses per cell, each summing to 1, row-major
 * with x fastest.
 */
export type DensityView = { grid: GridSpec, policy: Array<number>, target: Array<number>, 
/**
 * KL(target ‖ policy) on the grid, nats (policy histogram smoothed by a pseudo-count).
 */
kl: number, 
/**
 * KL(target ‖ uniform) on the same grid: what a policy that knows nothing would score
 * against this target. In RL the target sharpens as the critic learns, so this, not the
 * first KL, is the yardstick for how much of the target the policy has picked up.
 */
klUniform: number, 
/**
 * The env state it was computed at (RL), or null (sampler).
 */
state: Array<number> | null, 
/**
 * The seed it shows (index; 0 is the spec's own seed), or null when it pools every seed.
 */
seedIndex: number | null, 
/**
 * Pooled views: each seed's own KL(target ‖ policy), in seed order; else empty.
 */
klBySeed: Array<number>, };

export type GridSpec = { dims: number, x: Axis, 
/**
 * Present when `dims` = 2.
 */
y?: Axis, };

/**
 * One axis of a grid.
 */
export type Axis = { min: number, max: number, n: number, };

/**
 * Flow paths from noise (t = 0) to sample (t = 1): `paths[i][j]` is path i at `t[j]`.
 */
export type FlowPaths = { t: Array<number>, paths: Array<Array<Array<number>>>, };

/**
 * Estimator variance vs t, per estimator name.
 */
export type VarianceCurve = { t: Array<number>, byEstimator: { [key in string]: Array<number> }, };

/**
 * Probe settings.
 */
export type ProbeConfig = { 
/**
 * Adam steps to take (1..=10_000).
 */
steps: number, 
/**
 * Hidden width of the 2-layer MLP (1..=1024).
 */
hidden: number, 
/**
 * Number of regression points on [-π/2, π/2] (2..=4096).
 */
points: number, 
/**
 * Adam learning rate (0, 1].
 */
lr: number, seed: number, };

/**
 * What the probe measured.
 */
export type ProbeReport = { device: DeviceInfo, 
/**
 * Mean-squared error before each step (`steps` entries).
 */
losses: Array<number>, initialLoss: number, finalLoss: number, };
