//! The experiment spec: the ONE user-facing description of a run, read and written by the page,
//! the share link, autosave, checkpoints and the `rfm` CLI.
//!
//! - [`ExperimentSpec`]: every field with its default per [`Mode`] ([`ExperimentSpec::defaults`])
//!   and its range ([`fields`], one table that also drives the page's controls and
//!   [`ExperimentSpec::problems`]).
//! - [`share`]: the share-link codec (`v1.<base64url(JSON)>.<crc32>`).
//! - [`resolve`]: the internal configs of the trainers, built from a spec in this one place, and
//!   the CLI's named specs ([`resolve::named`]).
//!
//! Plain serde data: no burn, no wasm.

pub mod fields;
pub mod resolve;
pub mod share;

use std::fmt;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::envs::EnvName;
use crate::nets::{Parameterisation, Solver};
use crate::rfm::estimators::Estimator;
use crate::rfm::targets::Target;
use crate::trainer::WarmupNoise;

pub use crate::trainer::Agent;

pub use share::{ShareError, decode_share, encode_share};

/// What the playground trains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Online RL on a control task (env, critic, policy).
    #[default]
    Rl,
    /// Fit a 2-D flow to a known energy exp(-E/λ): no env, no critic.
    Sampler,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Rl, Mode::Sampler];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Rl => "rl",
            Mode::Sampler => "sampler",
        }
    }
}

/// A sampler-mode target by its stable name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum TargetName {
    /// Eight Gaussians on a circle.
    #[default]
    Gmm8,
    TwoMoons,
    Rings,
    /// Forty Gaussians scattered over a square.
    Gmm40,
}

impl TargetName {
    pub const ALL: [TargetName; 4] = [
        TargetName::Gmm8,
        TargetName::TwoMoons,
        TargetName::Rings,
        TargetName::Gmm40,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetName::Gmm8 => "gmm8",
            TargetName::TwoMoons => "two-moons",
            TargetName::Rings => "rings",
            TargetName::Gmm40 => "gmm40",
        }
    }

    /// The target density.
    pub fn target(self) -> Target {
        Target::from_name(self.as_str()).expect("every TargetName is a built-in target")
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TargetName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        TargetName::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown target '{s}' (valid: gmm8, two-moons, rings, gmm40)"))
    }
}

/// Where the posterior estimator's candidates come from (both modes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum ProposalName {
    /// The released code's proposal: the noise `x0 ~ N(0, I)`.
    Prior,
    /// A defensive mixture: half the candidates from a wide data-space Gaussian, `N(0, 1.5² I)`
    /// in the tanh latent in RL (docs/estimators.md), `N(0, 4² I)` in sampler mode
    /// (docs/sampler.md); the default.
    #[default]
    Mixture,
}

/// One experiment, as the page shows it, the share link carries it and the CLI runs it.
/// Field ranges live in [`fields::FIELDS`]; defaults in [`ExperimentSpec::defaults`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentSpec {
    /// `rl` or `sampler`.
    pub mode: Mode,
    /// RL task.
    pub env: EnvName,
    /// Sampler target.
    pub target: TargetName,
    /// RL agent.
    pub agent: Agent,
    /// Posterior-mean estimator by name: `rfm` (the paper's control variate), `noise`, `grad`,
    /// `cv-iso`, `cv-pool`, or `eta:X` with X in [0, 1].
    #[ts(type = "string")]
    pub estimator: Estimator,
    /// `flow` (velocity, linear path) or `diffusion` (noise, VP path).
    pub param: Parameterisation,
    /// ODE solver of the sampler.
    pub solver: Solver,
    /// Temperature λ of exp(Q/λ) (sampler: exp(-E/λ)).
    pub lambda: f32,
    /// Posterior samples K per estimate.
    pub k: usize,
    /// Action candidates per state when acting (RL).
    pub candidates: usize,
    /// ODE steps from noise to action.
    pub ode_steps: usize,
    /// Hidden width of every network.
    pub hidden: usize,
    /// Width of each sinusoidal embedding (time, λ) of the policy net.
    pub emb_width: usize,
    /// Actor (policy) Adam learning rate.
    pub actor_lr: f64,
    /// Critic Adam learning rate (RL).
    pub critic_lr: f64,
    /// Rows per update.
    pub batch: usize,
    /// RL: env steps with random actions before the first update.
    pub warmup: usize,
    /// RL: the warm-up's random actions: `uniform` (independent draws, the released code) or
    /// `pink` (temporally correlated noise that keeps a push going for tens of steps).
    pub warmup_noise: WarmupNoise,
    /// RL: replay capacity in transitions.
    pub replay: usize,
    /// Where the posterior candidates come from (`prior` or `mixture`).
    pub proposal: ProposalName,
    /// RL: env steps between greedy evaluations (0: never).
    pub eval_every: usize,
    /// RL: episodes per greedy evaluation.
    pub eval_episodes: usize,
    /// Steps to run (RL: env steps; sampler: updates, also the learning-rate schedule's
    /// horizon). 0: until paused (the page); the CLI needs a number.
    pub steps: usize,
    /// Seed of every random draw (exact in JavaScript up to 2^53 − 1).
    #[ts(type = "number")]
    pub seed: u64,
    /// Independent runs of this experiment trained side by side, seeds `seed`, `seed + 1`, …
    /// (the curves and the density show their spread; `session::seeds`). 1: one run.
    pub seeds: usize,
}

impl Default for ExperimentSpec {
    fn default() -> Self {
        Self::defaults(Mode::Rl)
    }
}

/// Horizon of the sampler's learning-rate schedule when the spec runs until paused.
pub const SAMPLER_SCHEDULE_STEPS: usize = 2000;

impl ExperimentSpec {
    /// The page's default experiment of `mode`: small networks that train at tens of updates per
    /// second in a browser tab. RL: multigoal, RFM flow policy, λ = 0.1, a 200-step warm-up;
    /// sampler: gmm8 at λ = 1 (the target's own temperature).
    pub fn defaults(mode: Mode) -> Self {
        let rl = Self {
            mode: Mode::Rl,
            env: EnvName::Multigoal,
            target: TargetName::Gmm8,
            agent: Agent::Rfm,
            estimator: Estimator::from_name("rfm").expect("a built-in estimator"),
            param: Parameterisation::Flow,
            solver: Solver::Euler,
            lambda: 0.1,
            k: 16,
            candidates: 8,
            ode_steps: 10,
            hidden: 64,
            emb_width: 32,
            actor_lr: 1e-3,
            critic_lr: 1e-3,
            batch: 128,
            warmup: 200,
            warmup_noise: WarmupNoise::Uniform,
            replay: 50_000,
            proposal: ProposalName::Mixture,
            eval_every: 1000,
            eval_episodes: 3,
            steps: 0,
            seed: 0,
            seeds: 1,
        };
        match mode {
            Mode::Rl => rl,
            Mode::Sampler => Self {
                mode: Mode::Sampler,
                lambda: 1.0,
                ..rl
            },
        }
    }

    /// Every problem of this spec (empty when it is usable), in field order.
    pub fn problems(&self) -> Vec<FieldError> {
        fields::FIELDS
            .iter()
            .filter_map(|f| f.check(self).err())
            .collect()
    }

    /// `Ok(())` or every problem at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let p = self.problems();
        if p.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(p))
        }
    }

    /// Parse a JSON object. Missing fields take the defaults of the object's mode (so a
    /// sampler spec without `lambda` gets λ = 1); unknown fields and wrong types are errors.
    pub fn from_json(json: &str) -> Result<Self, ShareError> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| ShareError::Json(e.to_string()))?;
        Self::from_value(value)
    }

    /// [`ExperimentSpec::from_json`] for a parsed value.
    pub fn from_value(value: serde_json::Value) -> Result<Self, ShareError> {
        let serde_json::Value::Object(patch) = value else {
            return Err(ShareError::Json(
                "expected a JSON object of experiment fields".to_string(),
            ));
        };
        let mode = match patch.get("mode") {
            None => Mode::Rl,
            Some(m) => serde_json::from_value(m.clone())
                .map_err(|e| ShareError::Json(format!("mode: {e}")))?,
        };
        let mut base = serde_json::to_value(Self::defaults(mode)).expect("a spec serialises");
        let obj = base
            .as_object_mut()
            .expect("a struct serialises to an object");
        for (k, v) in patch {
            obj.insert(k, v);
        }
        serde_json::from_value(base).map_err(|e| ShareError::Json(e.to_string()))
    }

    /// `self` with the fields of `patch` (camelCase keys) replaced, not yet validated. A patch
    /// that switches the mode starts from that mode's defaults for every field it does not name.
    pub fn patched(
        &self,
        patch: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, ShareError> {
        let mut value = serde_json::to_value(self).expect("a spec serialises");
        let obj = value
            .as_object_mut()
            .expect("a struct serialises to an object");
        if patch.get("mode").is_some_and(|m| m != &obj["mode"]) {
            obj.clear();
        }
        obj.extend(patch);
        Self::from_value(value)
    }

    /// One line naming what the networks are (for messages).
    pub fn describe(&self) -> String {
        match (self.mode, self.agent) {
            (Mode::Rl, Agent::Sac) => format!("SAC on {} (hidden {})", self.env, self.hidden),
            (Mode::Rl, Agent::Rfm) => format!(
                "RFM {} policy on {} (hidden {})",
                self.param_str(),
                self.env,
                self.hidden
            ),
            (Mode::Sampler, _) => format!(
                "the {} sampler on {} (hidden {})",
                self.param_str(),
                self.target,
                self.hidden
            ),
        }
    }

    fn param_str(&self) -> &'static str {
        match self.param {
            Parameterisation::Flow => "flow",
            Parameterisation::Diffusion => "diffusion",
        }
    }
}

/// One field's problem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// The field's name as in the JSON/URL (camelCase).
    pub field: String,
    pub value: String,
    /// The allowed values, e.g. `"1..=1000"` or `"(0, 1000]"`.
    pub range: String,
    /// One plain-language line.
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, value: impl fmt::Display, range: &str, why: &str) -> Self {
        let value = value.to_string();
        Self {
            field: field.to_string(),
            message: format!("{field} = {value} is {why} (allowed: {range})"),
            value,
            range: range.to_string(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// All problems of a spec, in field order.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<FieldError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<&str> = self.0.iter().map(|e| e.message.as_str()).collect();
        f.write_str(&lines.join("; "))
    }
}

#[cfg(test)]
mod tests;
