//! The RL trainer's internal config, [`TrainConfig`], and its validation. Users never write it:
//! it is built from an experiment spec in one place (`spec::resolve`), where the user-facing
//! names, defaults and ranges live (`spec/fields.rs`); [`TrainConfig::validate`] guards the
//! trainer's own invariants.
//!
//! - [`TrainConfig::released`] (also `Default`): the released RFM actor-critic
//!   (arXiv 2601.08136, §4 of the project notes): 2 × 256 nets, batch 256, K = 100 posterior
//!   samples, 32 candidates, 10 Euler steps, λ = 0.02, Adam 3e-4 / 1e-3, γ = 0.99, τ = 0.005,
//!   replay 250k, 10k uniform warm-up steps, global-norm clip 10.
//!   The base of every resolved config (γ, τ, the clip and SAC's settings are not spec fields).
//! - `TrainConfig::playground` (tests only): the small nets of the `playground` named spec.
//!
//! The JSON form is camelCase.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::nets::{Parameterisation, Solver};
use crate::rfm::estimators::{Estimator, Proposal};
use crate::trainer::WarmupNoise;

/// The learning agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum Agent {
    /// A flow or diffusion policy trained by Reverse Flow Matching (`estimator`, `param`).
    #[default]
    Rfm,
    /// Soft actor-critic, tanh-squashed Gaussian actor, automatic entropy tuning.
    Sac,
}

impl Agent {
    pub const ALL: [Agent; 2] = [Agent::Rfm, Agent::Sac];

    pub fn as_str(self) -> &'static str {
        match self {
            Agent::Rfm => "rfm",
            Agent::Sac => "sac",
        }
    }
}

impl fmt::Display for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Agent {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Agent::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| ConfigError::UnknownAgent(s.to_string()))
    }
}

/// Every setting of a training run (algorithm-specific fields are ignored by the others).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct TrainConfig {
    /// The agent: `rfm` or `sac`. Default rfm.
    pub agent: Agent,
    /// RFM: the posterior-mean estimator by name (`rfm`, `noise`, `grad`, `cv-iso`, `cv-pool`,
    /// `eta:<η>`; default clip and ridge). Default rfm.
    pub estimator: Estimator,
    /// RFM: `flow` (velocity on the linear path) or `diffusion` (ε-prediction on the VP path,
    /// sampled by the probability-flow ODE). Default flow.
    pub param: Parameterisation,
    /// Seed of every random draw (network init, replay sampling, candidates, env resets).
    /// Default 0; any `u64`.
    pub seed: u64,
    /// Critic hidden width. Default 256 (playground 64); 1..=4096.
    pub critic_hidden: usize,
    /// Critic hidden layers per head (also the SAC actor's hidden layers). Default 2; 1..=8.
    pub critic_layers: usize,
    /// Actor hidden width (RFM velocity net and SAC Gaussian actor). Default 256 (playground 64);
    /// 1..=4096.
    pub actor_hidden: usize,
    /// Residual blocks of the RFM velocity net (SAC uses `criticLayers` hidden layers).
    /// Default 2; 0..=16.
    pub actor_blocks: usize,
    /// Width of each sinusoidal embedding (time, λ) of the velocity net. Default 128
    /// (playground 32); even, 2..=1024.
    pub emb_width: usize,
    /// Transitions per update. Default 256 (playground 128); 1..=8192.
    pub batch_size: usize,
    /// K: posterior samples per state in the RFM estimator. Default 100 (playground 16);
    /// 1..=10000.
    pub posterior_samples: usize,
    /// Latent candidates per state when sampling actions (acting and the update's on-policy
    /// samples). Default 32 (playground 8); 1..=1024.
    pub candidates: usize,
    /// ODE steps of the sampler. Default 10; 1..=1000.
    pub ode_steps: usize,
    /// ODE solver (`euler` or `heun`). Default euler.
    pub solver: Solver,
    /// λ: temperature of the Boltzmann target `exp(Q/λ)` and of the candidate pick.
    /// Default 0.02; finite, (0, 1000].
    pub lambda: f32,
    /// Actor Adam learning rate. Default 3e-4; (0, 1].
    pub actor_lr: f64,
    /// Critic Adam learning rate. Default 1e-3; (0, 1].
    pub critic_lr: f64,
    /// SAC: Adam learning rate of the entropy temperature. Default 1e-3; (0, 1].
    pub alpha_lr: f64,
    /// SAC: initial entropy temperature α. Default 1.0; finite, (0, 100].
    pub init_alpha: f32,
    /// Discount γ. Default 0.99; [0, 1).
    pub gamma: f32,
    /// Polyak rate τ of the target critics. Default 0.005; (0, 1].
    pub tau: f32,
    /// Replay capacity in transitions. Default 250000 (playground 50000); 1..=10000000.
    pub replay_capacity: usize,
    /// Env steps with uniform random actions before the first update. Default 10000
    /// (playground 1000); 0..=10000000.
    pub warmup_steps: usize,
    /// The warm-up's actions: independent uniform draws (default, the released code) or pink
    /// (temporally correlated) noise (`trainer::warmup`).
    pub warmup_noise: WarmupNoise,
    /// Global gradient-norm clip of actor and critic updates. Default 10; finite, (0, 1e6].
    pub grad_clip: f32,
    /// Where the posterior estimator's candidates come from (RFM agents): the released code's
    /// prior on the noise, or a defensive mixture with a data-space Gaussian in the latent.
    pub proposal: Proposal,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::released()
    }
}

/// A config that cannot be used; each message is one line naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("config: {field} = {value} is out of range ({range})")]
    OutOfRange {
        field: &'static str,
        value: String,
        range: &'static str,
    },
    #[error("unknown agent '{0}' (valid: rfm, sac)")]
    UnknownAgent(String),
}

impl TrainConfig {
    /// The released settings.
    pub fn released() -> Self {
        Self {
            agent: Agent::Rfm,
            estimator: Estimator::default(),
            param: Parameterisation::Flow,
            seed: 0,
            critic_hidden: 256,
            critic_layers: 2,
            actor_hidden: 256,
            actor_blocks: 2,
            emb_width: 128,
            batch_size: 256,
            posterior_samples: 100,
            candidates: 32,
            ode_steps: 10,
            solver: Solver::Euler,
            lambda: 0.02,
            actor_lr: 3e-4,
            critic_lr: 1e-3,
            alpha_lr: 1e-3,
            init_alpha: 1.0,
            gamma: 0.99,
            tau: 0.005,
            replay_capacity: 250_000,
            warmup_steps: 10_000,
            warmup_noise: WarmupNoise::Uniform,
            grad_clip: 10.0,
            proposal: Proposal::Prior,
        }
    }

    /// The small nets of the `playground` named spec, for tests.
    #[cfg(test)]
    pub fn playground() -> Self {
        Self {
            critic_hidden: 64,
            actor_hidden: 64,
            emb_width: 32,
            batch_size: 128,
            posterior_samples: 16,
            candidates: 8,
            replay_capacity: 50_000,
            warmup_steps: 1_000,
            proposal: Proposal::LATENT_MIXTURE,
            ..Self::released()
        }
    }

    /// `Ok` when every field is in its documented range, else the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(
            field: &'static str,
            value: impl ToString,
            range: &'static str,
        ) -> Result<(), ConfigError> {
            Err(ConfigError::OutOfRange {
                field,
                value: value.to_string(),
                range,
            })
        }
        let int = |field, v: usize, lo: usize, hi: usize, range| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                bad(field, v, range)
            }
        };
        int("criticHidden", self.critic_hidden, 1, 4096, "1..=4096")?;
        int("criticLayers", self.critic_layers, 1, 8, "1..=8")?;
        int("actorHidden", self.actor_hidden, 1, 4096, "1..=4096")?;
        int("actorBlocks", self.actor_blocks, 0, 16, "0..=16")?;
        if !(2..=1024).contains(&self.emb_width) || !self.emb_width.is_multiple_of(2) {
            bad("embWidth", self.emb_width, "even, 2..=1024")?;
        }
        int("batchSize", self.batch_size, 1, 8192, "1..=8192")?;
        int(
            "posteriorSamples",
            self.posterior_samples,
            1,
            10_000,
            "1..=10000",
        )?;
        int("candidates", self.candidates, 1, 1024, "1..=1024")?;
        int("odeSteps", self.ode_steps, 1, 1000, "1..=1000")?;
        if !(self.lambda.is_finite() && self.lambda > 0.0 && self.lambda <= 1000.0) {
            bad("lambda", self.lambda, "finite, (0, 1000]")?;
        }
        let lr = |field, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                bad(field, v, "(0, 1]")
            }
        };
        lr("actorLr", self.actor_lr)?;
        lr("criticLr", self.critic_lr)?;
        lr("alphaLr", self.alpha_lr)?;
        if !(self.init_alpha.is_finite() && self.init_alpha > 0.0 && self.init_alpha <= 100.0) {
            bad("initAlpha", self.init_alpha, "finite, (0, 100]")?;
        }
        if !(self.gamma.is_finite() && (0.0..1.0).contains(&self.gamma)) {
            bad("gamma", self.gamma, "[0, 1)")?;
        }
        if !(self.tau.is_finite() && self.tau > 0.0 && self.tau <= 1.0) {
            bad("tau", self.tau, "(0, 1]")?;
        }
        int(
            "replayCapacity",
            self.replay_capacity,
            1,
            10_000_000,
            "1..=10000000",
        )?;
        int(
            "warmupSteps",
            self.warmup_steps,
            0,
            10_000_000,
            "0..=10000000",
        )?;
        if !(self.grad_clip.is_finite() && self.grad_clip > 0.0 && self.grad_clip <= 1e6) {
            bad("gradClip", self.grad_clip, "finite, (0, 1e6]")?;
        }
        if self.estimator.validate().is_err() {
            bad(
                "estimator",
                format!("{:?}", self.estimator),
                "finite parameters, clip and ridge >= 0",
            )?;
        }
        if self.proposal.validate().is_err() {
            bad(
                "proposal",
                format!("{:?}", self.proposal),
                "prior, or mixture with scale > 0 and share in [0, 1)",
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_released_matches_the_paper() {
        let r = TrainConfig::released();
        r.validate().unwrap();
        TrainConfig::playground().validate().unwrap();
        assert_eq!(TrainConfig::default(), r);
        assert_eq!(
            (
                r.critic_hidden,
                r.batch_size,
                r.posterior_samples,
                r.candidates
            ),
            (256, 256, 100, 32)
        );
        assert_eq!((r.lambda, r.actor_lr, r.critic_lr), (0.02, 3e-4, 1e-3));
        assert_eq!(
            (
                r.gamma,
                r.tau,
                r.replay_capacity,
                r.warmup_steps,
                r.grad_clip
            ),
            (0.99, 0.005, 250_000, 10_000, 10.0)
        );
    }

    #[test]
    fn validate_names_each_bad_field() {
        let base = TrainConfig::playground();
        let cases: Vec<(&str, TrainConfig)> = vec![
            (
                "criticHidden",
                TrainConfig {
                    critic_hidden: 0,
                    ..base.clone()
                },
            ),
            (
                "criticLayers",
                TrainConfig {
                    critic_layers: 9,
                    ..base.clone()
                },
            ),
            (
                "actorHidden",
                TrainConfig {
                    actor_hidden: 5000,
                    ..base.clone()
                },
            ),
            (
                "actorBlocks",
                TrainConfig {
                    actor_blocks: 17,
                    ..base.clone()
                },
            ),
            (
                "embWidth",
                TrainConfig {
                    emb_width: 7,
                    ..base.clone()
                },
            ),
            (
                "batchSize",
                TrainConfig {
                    batch_size: 0,
                    ..base.clone()
                },
            ),
            (
                "posteriorSamples",
                TrainConfig {
                    posterior_samples: 0,
                    ..base.clone()
                },
            ),
            (
                "candidates",
                TrainConfig {
                    candidates: 0,
                    ..base.clone()
                },
            ),
            (
                "odeSteps",
                TrainConfig {
                    ode_steps: 0,
                    ..base.clone()
                },
            ),
            (
                "lambda",
                TrainConfig {
                    lambda: 0.0,
                    ..base.clone()
                },
            ),
            (
                "lambda",
                TrainConfig {
                    lambda: f32::NAN,
                    ..base.clone()
                },
            ),
            (
                "actorLr",
                TrainConfig {
                    actor_lr: -1.0,
                    ..base.clone()
                },
            ),
            (
                "criticLr",
                TrainConfig {
                    critic_lr: 2.0,
                    ..base.clone()
                },
            ),
            (
                "alphaLr",
                TrainConfig {
                    alpha_lr: 0.0,
                    ..base.clone()
                },
            ),
            (
                "initAlpha",
                TrainConfig {
                    init_alpha: 0.0,
                    ..base.clone()
                },
            ),
            (
                "gamma",
                TrainConfig {
                    gamma: 1.0,
                    ..base.clone()
                },
            ),
            (
                "tau",
                TrainConfig {
                    tau: 0.0,
                    ..base.clone()
                },
            ),
            (
                "replayCapacity",
                TrainConfig {
                    replay_capacity: 0,
                    ..base.clone()
                },
            ),
            (
                "warmupSteps",
                TrainConfig {
                    warmup_steps: 20_000_000,
                    ..base.clone()
                },
            ),
            (
                "gradClip",
                TrainConfig {
                    grad_clip: f32::INFINITY,
                    ..base.clone()
                },
            ),
            (
                "proposal",
                TrainConfig {
                    proposal: Proposal::Mixture {
                        scale: f32::NAN,
                        share: 0.5,
                    },
                    ..base.clone()
                },
            ),
        ];
        for (field, cfg) in cases {
            let e = cfg.validate().unwrap_err();
            let ConfigError::OutOfRange {
                field: f,
                ref range,
                ..
            } = e
            else {
                panic!("{e}")
            };
            assert_eq!(f, field);
            let msg = e.to_string();
            assert!(msg.contains(field) && msg.contains(range), "{msg}");
        }
    }

    #[test]
    fn the_json_form_round_trips() {
        let base = TrainConfig::playground();
        assert_eq!(base.proposal, Proposal::LATENT_MIXTURE);
        let s = serde_json::to_string(&base).unwrap();
        assert!(s.contains("\"posteriorSamples\":16"), "{s}");
        assert_eq!(serde_json::from_str::<TrainConfig>(&s).unwrap(), base);
    }
}
