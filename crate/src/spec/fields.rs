//! The table of every [`ExperimentSpec`] field: label, help line, range or options, and where it
//! applies (mode, agent). It validates specs ([`ExperimentSpec::problems`]) and is exported to
//! the page as [`FieldInfo`]s ([`describe`]), so the controls' ranges and option lists are never
//! copied by hand.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{Agent, ExperimentSpec, FieldError, Mode, TargetName};
use crate::envs::EnvName;
use crate::rfm::estimators::Estimator;

/// JavaScript's largest exactly representable integer.
pub const MAX_SAFE_SEED: u64 = (1 << 53) - 1;

/// How the page edits a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Control {
    Select,
    Number,
}

/// One option of a select.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FieldOption {
    pub value: String,
    pub label: String,
}

/// What the page needs to draw one control (see [`describe`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FieldInfo {
    /// The spec's key (camelCase), e.g. `lambda`.
    pub key: String,
    pub label: String,
    /// One plain-language line (a tooltip).
    pub help: String,
    pub control: Control,
    /// Select only (empty otherwise).
    pub options: Vec<FieldOption>,
    /// Number only: the allowed range (inclusive unless `minOpen`).
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The lower bound is excluded (λ > 0).
    pub min_open: bool,
    pub integer: bool,
    /// A log-scale quantity (learning rates, λ).
    pub log: bool,
    /// Where the field applies.
    pub modes: Vec<Mode>,
    /// In RL, the agents it applies to.
    pub agents: Vec<Agent>,
    /// Shown under "advanced" (the page may fold these away).
    pub advanced: bool,
}

/// The range or option list of a field.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// One of the listed `(value, label)` options.
    Select(fn() -> Vec<(String, String)>),
    /// An integer in `[min, max]`.
    Int { min: u64, max: u64 },
    /// A finite float in `[min, max]` (`(min, max]` when `min_open`).
    Float {
        min: f64,
        max: f64,
        min_open: bool,
        log: bool,
    },
}

/// One row of [`FIELDS`].
pub struct Field {
    pub key: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub modes: &'static [Mode],
    pub agents: &'static [Agent],
    pub advanced: bool,
    /// The field's value as JSON (its serde form).
    pub get: fn(&ExperimentSpec) -> serde_json::Value,
}

const BOTH: &[Mode] = &[Mode::Rl, Mode::Sampler];
const RL: &[Mode] = &[Mode::Rl];
const SAMPLER: &[Mode] = &[Mode::Sampler];
const ALL_AGENTS: &[Agent] = &[Agent::Rfm, Agent::Sac];
const RFM: &[Agent] = &[Agent::Rfm];

fn v<T: Serialize>(x: T) -> serde_json::Value {
    serde_json::to_value(x).expect("field values serialise")
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The estimators every mode offers (fixed η values: `eta:X` with X in [0, 1] is accepted too).
pub const ESTIMATORS: &[(&str, &str)] = &[
    ("rfm", "RFM (optimal control variate)"),
    ("noise", "Noise expectation (η = 0)"),
    ("grad", "Gradient expectation (η = 1)"),
    ("eta:0.5", "Fixed η = 0.5"),
    ("cv-iso", "Isotropic control variate (ours)"),
    ("cv-pool", "Pooled control variate (ours)"),
];

/// Every field, in the order the page shows them and problems are reported.
pub const FIELDS: &[Field] = &[
    Field {
        key: "mode",
        label: "Mode",
        help: "RL trains a policy on a control task; the sampler fits a known 2-D density.",
        kind: Kind::Select(|| {
            pairs(&[
                ("rl", "RL (control task)"),
                ("sampler", "Sampler (known density)"),
            ])
        }),
        modes: BOTH,
        agents: ALL_AGENTS,
        advanced: false,
        get: |s| v(s.mode),
    },
    Field {
        key: "env",
        label: "Environment",
        help: "The control task (Gymnasium's pendulum and mountain car, or the multi-goal plane).",
        kind: Kind::Select(|| {
            EnvName::ALL
                .iter()
                .map(|e| (e.as_str().to_string(), env_label(*e).to_string()))
                .collect()
        }),
        modes: RL,
        agents: ALL_AGENTS,
        advanced: false,
        get: |s| v(s.env),
    },
    Field {
        key: "target",
        label: "Target",
        help: "The density exp(-E/λ) the sampler learns to draw from.",
        kind: Kind::Select(|| {
            TargetName::ALL
                .iter()
                .map(|t| (t.as_str().to_string(), target_label(*t).to_string()))
                .collect()
        }),
        modes: SAMPLER,
        agents: ALL_AGENTS,
        advanced: false,
        get: |s| v(s.target),
    },
    Field {
        key: "agent",
        label: "Agent",
        help: "RFM trains a flow or diffusion policy; SAC is the Gaussian baseline.",
        kind: Kind::Select(|| {
            pairs(&[
                ("rfm", "RFM (flow / diffusion policy)"),
                ("sac", "SAC (Gaussian policy)"),
            ])
        }),
        modes: RL,
        agents: ALL_AGENTS,
        advanced: false,
        get: |s| v(s.agent),
    },
    Field {
        key: "estimator",
        label: "Estimator",
        help: "How the posterior mean behind each regression target is estimated from K samples.",
        kind: Kind::Select(|| pairs(ESTIMATORS)),
        modes: BOTH,
        agents: RFM,
        advanced: false,
        get: |s| v(s.estimator),
    },
    Field {
        key: "param",
        label: "Parameterisation",
        help: "Flow: the net predicts a velocity (linear path). Diffusion: it predicts the noise (VP path).",
        kind: Kind::Select(|| {
            pairs(&[
                ("flow", "Flow (velocity)"),
                ("diffusion", "Diffusion (noise)"),
            ])
        }),
        modes: BOTH,
        agents: RFM,
        advanced: false,
        get: |s| v(s.param),
    },
    Field {
        key: "solver",
        label: "ODE solver",
        help: "Euler: one network pass per step; Heun: two, second-order accurate.",
        kind: Kind::Select(|| pairs(&[("euler", "Euler"), ("heun", "Heun")])),
        modes: BOTH,
        agents: RFM,
        advanced: false,
        get: |s| v(s.solver),
    },
    Field {
        key: "lambda",
        label: "Temperature λ",
        help: "The target is exp(Q/λ) (sampler: exp(-E/λ)): small λ is greedy, large λ spreads out.",
        kind: Kind::Float {
            min: 0.0,
            max: 1000.0,
            min_open: true,
            log: true,
        },
        modes: BOTH,
        agents: ALL_AGENTS,
        advanced: false,
        get: |s| v(s.lambda),
    },
    Field {
        key: "k",
        label: "Posterior samples K",
        help: "Importance samples per estimate of the posterior mean.",
        kind: Kind::Int { min: 1, max: 1000 },
        modes: BOTH,
        agents: RFM,
        advanced: false,
        get: |s| v(s.k),
    },
    Field {
        key: "candidates",
        label: "Action candidates",
        help: "Policy samples per state when acting; one is picked by softmax(Q/λ).",
        kind: Kind::Int { min: 1, max: 256 },
        modes: RL,
        agents: RFM,
        advanced: false,
        get: |s| v(s.candidates),
    },
    Field {
        key: "odeSteps",
        label: "ODE steps",
        help: "Integration steps from noise (t = 0) to a sample (t = 1).",
        kind: Kind::Int { min: 1, max: 100 },
        modes: BOTH,
        agents: RFM,
        advanced: false,
        get: |s| v(s.ode_steps),
    },
    Field {
        key: "hidden",
        label: "Hidden width",
        help: "Units per hidden layer of every network.",
        kind: Kind::Int { min: 4, max: 512 },
        modes: BOTH,
        agents: ALL_AGENTS,
        advanced: false,
        get: |s| v(s.hidden),
    },
    Field {
        key: "embWidth",
        label: "Embedding width",
        help: "Width of the sinusoidal time and λ embeddings of the policy net (even).",
        kind: Kind::Int { min: 2, max: 1024 },
        modes: BOTH,
        agents: RFM,
        advanced: true,
        get: |s| v(s.emb_width),
    },
    Field {
        key: "actorLr",
        label: "Policy learning rate",
        help: "Adam step size of the policy (actor).",
        kind: Kind::Float {
            min: 1e-6,
            max: 0.1,
            min_open: false,
            log: true,
        },
        modes: BOTH,
        agents: ALL_AGENTS,
        advanced: false,
        get: |s| v(s.actor_lr),
    },
    Field {
        key: "criticLr",
        label: "Critic learning rate",
        help: "Adam step size of the twin Q critic.",
        kind: Kind::Float {
            min: 1e-6,
            max: 0.1,
            min_open: false,
            log: true,
        },
        modes: RL,
        agents: ALL_AGENTS,
        advanced: false,
        get: |s| v(s.critic_lr),
    },
    Field {
        key: "batch",
        label: "Batch size",
        help: "Rows per update.",
        kind: Kind::Int { min: 1, max: 1024 },
        modes: BOTH,
        agents: ALL_AGENTS,
        advanced: false,
        get: |s| v(s.batch),
    },
    Field {
        key: "warmup",
        label: "Warm-up steps",
        help: "Env steps with random actions before the first update (at least one batch).",
        kind: Kind::Int {
            min: 0,
            max: 10_000_000,
        },
        modes: RL,
        agents: ALL_AGENTS,
        advanced: true,
        get: |s| v(s.warmup),
    },
    Field {
        key: "warmupNoise",
        label: "Warm-up actions",
        help: "The warm-up's random actions: independent uniform draws (released code) or pink noise, which keeps a push going for tens of steps (mountain car needs it).",
        kind: Kind::Select(|| {
            pairs(&[
                ("uniform", "Uniform (released)"),
                ("pink", "Pink noise (correlated)"),
            ])
        }),
        modes: RL,
        agents: ALL_AGENTS,
        advanced: true,
        get: |s| v(s.warmup_noise),
    },
    Field {
        key: "replay",
        label: "Replay capacity",
        help: "Transitions the replay buffer keeps.",
        kind: Kind::Int {
            min: 1,
            max: 10_000_000,
        },
        modes: RL,
        agents: ALL_AGENTS,
        advanced: true,
        get: |s| v(s.replay),
    },
    Field {
        key: "proposal",
        label: "Posterior proposal",
        help: "Where the estimator's candidates come from: the noise prior (released code) or a defensive mixture, half of them drawn from a wide Gaussian over the data (the action box in RL, N(0, 4²) in sampler mode).",
        kind: Kind::Select(|| {
            pairs(&[
                ("mixture", "Defensive mixture"),
                ("prior", "Noise prior (released)"),
            ])
        }),
        modes: BOTH,
        agents: RFM,
        advanced: true,
        get: |s| v(s.proposal),
    },
    Field {
        key: "evalEvery",
        label: "Evaluate every",
        help: "Env steps between greedy evaluations (0: never).",
        kind: Kind::Int {
            min: 0,
            max: 10_000_000,
        },
        modes: RL,
        agents: ALL_AGENTS,
        advanced: true,
        get: |s| v(s.eval_every),
    },
    Field {
        key: "evalEpisodes",
        label: "Evaluation episodes",
        help: "Episodes per greedy evaluation.",
        kind: Kind::Int { min: 1, max: 100 },
        modes: RL,
        agents: ALL_AGENTS,
        advanced: true,
        get: |s| v(s.eval_episodes),
    },
    Field {
        key: "steps",
        label: "Steps to run",
        help: "Stop after this many steps (RL: env steps; sampler: updates); 0 runs until paused.",
        kind: Kind::Int {
            min: 0,
            max: 10_000_000,
        },
        modes: BOTH,
        agents: ALL_AGENTS,
        advanced: true,
        get: |s| v(s.steps),
    },
    Field {
        key: "seed",
        label: "Seed",
        help: "Seed of every random draw: the same seed gives the same run.",
        kind: Kind::Int {
            min: 0,
            max: MAX_SAFE_SEED,
        },
        modes: BOTH,
        agents: ALL_AGENTS,
        advanced: false,
        get: |s| v(s.seed),
    },
    Field {
        key: "seeds",
        label: "Seeds at once",
        help: "Train this many independent runs side by side (seeds seed, seed + 1, …) to see how much the result depends on luck: faint curves are the other seeds, and the density can show any seed or all of them. On the CPU each seed costs a full run's time; on WebGPU the seeds' updates run together, in the same GPU kernels.",
        kind: Kind::Int {
            min: 1,
            max: MAX_SEEDS as u64,
        },
        modes: BOTH,
        agents: ALL_AGENTS,
        advanced: false,
        get: |s| v(s.seeds),
    },
];

/// The most seeds one experiment trains at once (each is a full set of networks, optimisers and
/// a replay buffer, and costs a run's time per step).
pub const MAX_SEEDS: usize = 32;

fn env_label(e: EnvName) -> &'static str {
    match e {
        EnvName::Pendulum => "Pendulum (swing up)",
        EnvName::MountainCar => "Mountain car",
        EnvName::Multigoal => "Multi-goal plane",
    }
}

fn target_label(t: TargetName) -> &'static str {
    match t {
        TargetName::Gmm8 => "8 Gaussians",
        TargetName::TwoMoons => "Two moons",
        TargetName::Rings => "Rings",
        TargetName::Gmm40 => "40 Gaussians",
    }
}

fn range_text(kind: &Kind) -> String {
    match kind {
        Kind::Select(opts) => opts()
            .into_iter()
            .map(|(v, _)| v)
            .collect::<Vec<_>>()
            .join(", "),
        Kind::Int { min, max } => format!("{min}..={max}"),
        Kind::Float {
            min, max, min_open, ..
        } => format!(
            "{}{}, {}]",
            if *min_open { "(" } else { "[" },
            fmt_num(*min),
            fmt_num(*max)
        ),
    }
}

fn fmt_num(x: f64) -> String {
    if x != 0.0 && x.abs() < 1e-3 {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

impl Field {
    /// `Ok` when this field of `spec` is in range.
    pub fn check(&self, spec: &ExperimentSpec) -> Result<(), FieldError> {
        let value = (self.get)(spec);
        let shown = match &value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let fail = |why: &str| {
            Err(FieldError::new(
                self.key,
                &shown,
                &range_text(&self.kind),
                why,
            ))
        };
        match self.kind {
            Kind::Select(opts) => {
                if self.key == "estimator" {
                    // Any η in [0, 1] is accepted, not only the listed 0.5 (the name itself was
                    // checked when the spec was parsed).
                    return match spec.estimator {
                        Estimator::Eta(eta) if !(0.0..=1.0).contains(&eta) => Err(FieldError::new(
                            self.key,
                            &shown,
                            "rfm, noise, grad, cv-iso, cv-pool, eta:X with X in [0, 1]",
                            "outside the interpolation range: η must lie in [0, 1]",
                        )),
                        _ => Ok(()),
                    };
                }
                if opts().iter().any(|(v, _)| *v == shown) {
                    Ok(())
                } else {
                    fail("not one of the options")
                }
            }
            Kind::Int { min, max } => match value.as_u64() {
                Some(x) if (min..=max).contains(&x) => {
                    if self.key == "embWidth" && x % 2 == 1 {
                        fail("odd (it must be even)")
                    } else {
                        Ok(())
                    }
                }
                _ => fail("out of range"),
            },
            Kind::Float {
                min, max, min_open, ..
            } => match value.as_f64() {
                // Non-finite floats serialise as JSON null.
                Some(x) if (if min_open { x > min } else { x >= min }) && x <= max => Ok(()),
                other => Err(FieldError::new(
                    self.key,
                    float_text(spec, self.key),
                    &range_text(&self.kind),
                    if other.is_some() {
                        "out of range"
                    } else {
                        "not a finite number"
                    },
                )),
            },
        }
    }

    /// The page's description of this field.
    pub fn info(&self) -> FieldInfo {
        let (control, options, min, max, min_open, integer, log) = match self.kind {
            Kind::Select(opts) => (
                Control::Select,
                opts()
                    .into_iter()
                    .map(|(value, label)| FieldOption { value, label })
                    .collect(),
                None,
                None,
                false,
                false,
                false,
            ),
            Kind::Int { min, max } => (
                Control::Number,
                vec![],
                Some(min as f64),
                Some(max as f64),
                false,
                true,
                false,
            ),
            Kind::Float {
                min,
                max,
                min_open,
                log,
            } => (
                Control::Number,
                vec![],
                Some(min),
                Some(max),
                min_open,
                false,
                log,
            ),
        };
        FieldInfo {
            key: self.key.to_string(),
            label: self.label.to_string(),
            help: self.help.to_string(),
            control,
            options,
            min,
            max,
            min_open,
            integer,
            log,
            modes: self.modes.to_vec(),
            agents: self.agents.to_vec(),
            advanced: self.advanced,
        }
    }

    /// Whether the field matters for `spec` (its mode and, in RL, its agent).
    pub fn applies(&self, spec: &ExperimentSpec) -> bool {
        self.modes.contains(&spec.mode)
            && (spec.mode != Mode::Rl || self.agents.contains(&spec.agent))
    }
}

/// A float field as Rust prints it (`0.1`, `NaN`; serde would give `0.10000000149011612` for
/// an f32 and null for a non-finite value).
fn float_text(spec: &ExperimentSpec, key: &str) -> String {
    match key {
        "lambda" => spec.lambda.to_string(),
        "actorLr" => spec.actor_lr.to_string(),
        "criticLr" => spec.critic_lr.to_string(),
        _ => "null".to_string(),
    }
}

/// Every field's [`FieldInfo`], in display order.
pub fn describe() -> Vec<FieldInfo> {
    FIELDS.iter().map(Field::info).collect()
}

/// The field named `key`.
pub fn field(key: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.key == key)
}
