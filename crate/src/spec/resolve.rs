//! The internal configs of the trainers, built from an [`ExperimentSpec`] in this one place,
//! and the CLI's named specs.
//!
//! | spec field | RL ([`TrainConfig`]) | sampler ([`SamplerConfig`]) |
//! |---|---|---|
//! | hidden | actor and critic width | policy width |
//! | actorLr | actor Adam | policy Adam (cosine to lr/10 over `steps`) |
//! | k, estimator, param, solver, odeSteps, lambda, batch, embWidth, seed | same meaning | same meaning |
//! | proposal | prior, or the latent mixture `N(0, 1.5² I)` | prior, or the mixture with `N(0, wideStd² I)` (`proposalShare` 0.5) |
//! | candidates, criticLr, warmup, warmupNoise, replay | as named | unused |

use super::{ExperimentSpec, Mode, ProposalName, SAMPLER_SCHEDULE_STEPS};
use crate::rfm::estimators::Proposal;
use crate::sampler::SamplerConfig;
use crate::trainer::config::TrainConfig;

/// The CLI's named specs (`rfm train --preset NAME`).
pub const NAMED: &[(&str, &str)] = &[
    (
        "page",
        "the page's default experiment (multigoal, λ = 0.1, 200 warm-up steps)",
    ),
    (
        "playground",
        "small nets for the CLI (2 × 64, batch 128, K 16, 8 candidates, λ = 0.02, 1k warm-up)",
    ),
    (
        "released",
        "the released paper settings (2 × 256, batch 256, K 100, 32 candidates, λ = 0.02, 10k warm-up)",
    ),
];

/// A named spec (see [`NAMED`]), in RL mode.
pub fn named(name: &str) -> Option<ExperimentSpec> {
    let page = ExperimentSpec::defaults(Mode::Rl);
    let playground = ExperimentSpec {
        lambda: 0.02,
        actor_lr: 3e-4,
        warmup: 1_000,
        ..page.clone()
    };
    Some(match name {
        "page" => page,
        "playground" => playground,
        "released" => ExperimentSpec {
            hidden: 256,
            emb_width: 128,
            batch: 256,
            k: 100,
            candidates: 32,
            replay: 250_000,
            warmup: 10_000,
            proposal: ProposalName::Prior,
            ..playground
        },
        _ => return None,
    })
}

/// The trainer config of the named spec `name` (see [`NAMED`]) with `overrides` (a JSON object of
/// spec fields, e.g. `{"batch": 512}`) laid over it, validated: what `rfm bench` and the page's
/// `?bench` measure.
pub fn named_train_config(name: &str, overrides: Option<&str>) -> Result<TrainConfig, String> {
    let base = named(name).ok_or_else(|| {
        let names: Vec<&str> = NAMED.iter().map(|(n, _)| *n).collect();
        format!("unknown config '{name}' ({})", names.join(", "))
    })?;
    let spec = match overrides {
        None => base,
        Some(json) => {
            let patch: serde_json::Value =
                serde_json::from_str(json).map_err(|e| format!("overrides: {e}"))?;
            let serde_json::Value::Object(patch) = patch else {
                return Err("overrides: expected a JSON object of spec fields".to_string());
            };
            base.patched(patch).map_err(|e| format!("overrides: {e}"))?
        }
    };
    spec.validate().map_err(|e| e.to_string())?;
    Ok(train_config(&spec))
}

/// The RL trainer's config for `spec` (RL mode). The warm-up is never shorter than one batch.
pub fn train_config(spec: &ExperimentSpec) -> TrainConfig {
    TrainConfig {
        agent: spec.agent,
        estimator: spec.estimator,
        param: spec.param,
        seed: spec.seed,
        critic_hidden: spec.hidden,
        actor_hidden: spec.hidden,
        emb_width: spec.emb_width,
        batch_size: spec.batch,
        posterior_samples: spec.k,
        candidates: spec.candidates,
        ode_steps: spec.ode_steps,
        solver: spec.solver,
        lambda: spec.lambda,
        actor_lr: spec.actor_lr,
        critic_lr: spec.critic_lr,
        replay_capacity: spec.replay,
        warmup_steps: spec.warmup.max(spec.batch),
        warmup_noise: spec.warmup_noise,
        proposal: match spec.proposal {
            ProposalName::Prior => Proposal::Prior,
            ProposalName::Mixture => Proposal::LATENT_MIXTURE,
        },
        ..TrainConfig::released()
    }
}

/// The sampler trainer's config for `spec` (sampler mode).
pub fn sampler_config(spec: &ExperimentSpec) -> SamplerConfig {
    SamplerConfig {
        target: spec.target.as_str().to_string(),
        estimator: spec.estimator,
        param: spec.param,
        solver: spec.solver,
        lambda: spec.lambda,
        k: spec.k,
        batch: spec.batch,
        lr: spec.actor_lr,
        hidden: spec.hidden,
        emb_width: spec.emb_width,
        ode_steps: spec.ode_steps,
        train_steps: if spec.steps > 0 {
            spec.steps
        } else {
            SAMPLER_SCHEDULE_STEPS
        },
        proposal_share: match spec.proposal {
            ProposalName::Prior => 0.0,
            ProposalName::Mixture => SamplerConfig::MIXTURE_SHARE,
        },
        seed: spec.seed,
        ..SamplerConfig::default()
    }
}
