//! The RFM actor-critic (flow or diffusion policy), in the released update order (project
//! notes §4b), on the network seam [`super::seam`]:
//!
//! 1. on-policy latents `y1` for the batch states: `C` candidates × ODE steps, one picked per
//!    state by softmax(`min(Q1, Q2)/λ`) — the regression data;
//! 2. the same sampling on the next states, `a' = tanh(y1')`, TD target
//!    `r + γ (1 − done) min(Q1', Q2')(s', a')` from the target critics (no entropy term);
//! 3. critic step (sum of the two heads' MSE, Adam, global-norm clip), staged;
//! 4. posterior target with the *just-updated* (staged) critics: `t ~ U[0.01, 0.99]`,
//!    `x_t = α_t y1 + β_t y0` on the parameterisation's path, K candidates `x1`, `Q` and `∇ₐQ`
//!    at `tanh(x1)` → the tanh-latent Boltzmann log-density → the estimator → the regression
//!    target ([`crate::rfm::posterior`]): velocity (flow, linear path) or noise `μ0`
//!    (diffusion, VP path);
//! 5. actor step: MSE of the net's output at `(t, x_t, s)` to the stop-gradient target, staged;
//! 6. commit both steps, Polyak update of the target critics.
//!
//! Acting: `C` latent candidates from the policy's ODE (Euler / Heun; for diffusion the
//! probability-flow ODE), `a = tanh(y)`, picked by softmax(`Q/λ`) while training, argmax `Q`
//! when evaluating. Nothing is committed unless every loss and gradient norm is finite.

use super::seam::{
    Impl, Nets, NetsSpec, PolicyNets, PosteriorStep, PosteriorStepError, RfmNets, UpdateOut,
    UpdateSpec, sample_picked,
};
use super::weights::{NamedTensor, TensorStore};
use super::{TrainConfig, TrainError, UpdateStats, check_finite};
use crate::device::{ComputeDevice, DeviceError};
use crate::nets::critic::CriticConfig;
use crate::nets::policy::paths_to_host;
use crate::nets::{OdeConfig, Parameterisation, PolicyConfig};
use crate::replay::Batch;
use crate::rfm::estimators::Estimator;
use crate::rfm::path::Path;
use crate::rfm::posterior::Regression;
use crate::rng::Rng;

/// The regression target of a parameterisation.
pub fn regression(param: Parameterisation) -> Regression {
    match param {
        Parameterisation::Flow => Regression::Velocity,
        Parameterisation::Diffusion => Regression::Noise,
    }
}

/// The networks' shapes and fixed settings for `cfg`.
pub(crate) fn nets_spec(cfg: &TrainConfig, obs_dim: usize, act_dim: usize) -> NetsSpec {
    NetsSpec {
        policy: PolicyConfig {
            state_dim: obs_dim,
            act_dim,
            hidden: cfg.actor_hidden,
            blocks: cfg.actor_blocks,
            emb_width: cfg.emb_width,
            param: cfg.param,
            ..Default::default()
        },
        critic: Some(CriticConfig {
            layers: cfg.critic_layers,
            ..CriticConfig::new(obs_dim, act_dim, cfg.critic_hidden)
        }),
        ode: OdeConfig {
            solver: cfg.solver,
            steps: cfg.ode_steps,
            ..Default::default()
        },
        lambda: cfg.lambda,
        grad_clip: cfg.grad_clip,
    }
}

/// Networks and settings of an RFM agent.
pub struct RfmAgent {
    nets: Nets,
    estimator: Estimator,
    path: Path,
    regression: Regression,
    ode: OdeConfig,
    obs_dim: usize,
    act_dim: usize,
    cfg: TrainConfig,
}

impl RfmAgent {
    /// Build the actor then the critic from `rng` (target = copy of the critic), on the
    /// network implementation for `device`.
    pub fn new(
        cfg: &TrainConfig,
        obs_dim: usize,
        act_dim: usize,
        device: &ComputeDevice,
        rng: &mut Rng,
    ) -> Self {
        Self::with_impl(cfg, obs_dim, act_dim, device, Impl::for_device(device), rng)
    }

    /// [`RfmAgent::new`] on a chosen implementation (the parity tests run both on flex).
    pub(crate) fn with_impl(
        cfg: &TrainConfig,
        obs_dim: usize,
        act_dim: usize,
        device: &ComputeDevice,
        which: Impl,
        rng: &mut Rng,
    ) -> Self {
        let spec = nets_spec(cfg, obs_dim, act_dim);
        Self {
            nets: Nets::new(&spec, device, which, rng),
            estimator: cfg.estimator,
            path: cfg.param.path(),
            regression: regression(cfg.param),
            ode: spec.ode,
            obs_dim,
            act_dim,
            cfg: cfg.clone(),
        }
    }

    /// Run the fused updates with other seeds' (`Nets::join_gather`).
    #[cfg(feature = "webgpu")]
    pub(crate) fn join_gather(&mut self, gather: super::seam::batch::SeedGather, index: usize) {
        self.nets.join_gather(gather, index);
    }

    /// An action in `[-1, 1]^act` for one observation.
    pub async fn act(
        &mut self,
        obs: &[f32],
        explore: bool,
        rng: &mut Rng,
    ) -> Result<Vec<f32>, DeviceError> {
        let (o, d, c) = (self.obs_dim, self.act_dim, self.cfg.candidates);
        let lambda = self.cfg.lambda;
        let y = sample_picked(&mut self.nets, obs, 1, (o, d), c, lambda, explore, rng).await?;
        Ok(y.into_iter().map(f32::tanh).collect())
    }

    /// One actor-critic update from `batch` (the module's six steps); nothing is committed
    /// unless every loss and gradient norm is finite.
    pub(crate) async fn update(
        &mut self,
        batch: &Batch,
        step: usize,
        rng: &mut Rng,
    ) -> Result<UpdateStats, TrainError> {
        let cfg = &self.cfg;
        // (1)–(5) staged (on WebGPU all on the device, read back once).
        let spec = UpdateSpec {
            candidates: cfg.candidates,
            gamma: cfg.gamma,
            critic_lr: cfg.critic_lr,
            actor_lr: cfg.actor_lr,
            posterior: PosteriorStep {
                path: &self.path,
                proposal: &cfg.proposal,
                estimator: &self.estimator,
                k: cfg.posterior_samples,
                regression: self.regression,
                lambda: cfg.lambda,
            },
        };
        let UpdateOut {
            critic,
            posterior: post,
        } = self.nets.rfm_update(batch, &spec, rng).await?;
        // A non-finite critic step is reported as such, before what it did to the posterior.
        check_finite(step, "critic loss", critic.loss)?;
        check_finite(step, "critic gradient norm", critic.norm)?;
        let post = post.map_err(|e| match e {
            PosteriorStepError::Device(e) => TrainError::from(e),
            PosteriorStepError::NonFiniteQ(value) => TrainError::NonFinite {
                step,
                what: "Q at the posterior samples",
                value,
            },
            PosteriorStepError::Estimator(message) => TrainError::Estimator { step, message },
            PosteriorStepError::NonFiniteTarget(value) => TrainError::NonFinite {
                step,
                what: "regression target",
                value,
            },
        })?;
        let actor = post.actor;
        check_finite(step, "actor loss", actor.loss)?;
        check_finite(step, "actor gradient norm", actor.norm)?;

        // (6) Commit, then Polyak.
        let tau = cfg.tau;
        self.nets.commit(tau);
        Ok(UpdateStats {
            critic_loss: critic.loss,
            actor_loss: actor.loss,
            ess: Some(post.mean_ess),
            alpha: None,
        })
    }

    pub(crate) async fn export(&self, out: &mut Vec<NamedTensor>) -> Result<(), DeviceError> {
        self.nets.export(out).await
    }

    pub(crate) fn import(mut self, store: &mut TensorStore) -> Result<Self, String> {
        self.nets.import(store)?;
        Ok(self)
    }
}

/// Read access for the playground's views (`trainer::views`): the committed networks.
impl RfmAgent {
    /// `y(t_end)` of the policy's ODE from `y0` (`[rows·act]`) at states `s` (`[rows·obs]`).
    pub(crate) async fn policy_latents(
        &self,
        y0: Vec<f32>,
        s: &[f32],
    ) -> Result<Vec<f32>, DeviceError> {
        self.nets.sample(y0, s).await
    }

    pub(crate) async fn q_min(&self, s: &[f32], a: &[f32]) -> Result<Vec<f32>, DeviceError> {
        self.nets.q_min(s, a).await
    }

    pub(crate) async fn q_and_grad(
        &self,
        s: &[f32],
        a: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>), DeviceError> {
        self.nets.q_and_grad(s, a, false).await
    }

    /// `(t [steps+1], paths[i][j] = tanh(y_i(t_j)))` from `y0` at states `s`.
    pub(crate) async fn flow_paths(
        &self,
        y0: Vec<f32>,
        s: Vec<f32>,
        device: &ComputeDevice,
    ) -> Result<(Vec<f32>, Vec<Vec<Vec<f32>>>), DeviceError> {
        let (o, d) = (self.obs_dim, self.act_dim);
        let rows = y0.len() / d;
        let dev = device.device();
        let out = self.nets.policy_module().sample(
            super::tensor2(y0, rows, d, dev),
            Some(super::tensor2(s, rows, o, dev)),
            self.cfg.lambda,
            &self.ode,
            true,
        );
        paths_to_host(out.path.unwrap_or_default(), &self.ode, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::ComputeDevice;
    use crate::envs::{EnvName, make_env};
    use crate::trainer::{Agent, Trainer};

    fn block<T>(f: impl Future<Output = T>) -> T {
        pollster::block_on(f)
    }

    #[test]
    fn every_estimator_and_parameterisation_updates_with_finite_losses() {
        for param in [Parameterisation::Flow, Parameterisation::Diffusion] {
            for name in ["rfm", "noise", "grad", "cv-iso", "cv-pool", "eta:0.5"] {
                let cfg = TrainConfig {
                    agent: Agent::Rfm,
                    estimator: Estimator::from_name(name).unwrap(),
                    param,
                    critic_hidden: 16,
                    actor_hidden: 16,
                    emb_width: 8,
                    batch_size: 16,
                    posterior_samples: 8,
                    candidates: 4,
                    ode_steps: 3,
                    warmup_steps: 40,
                    seed: 1,
                    ..TrainConfig::playground()
                };
                let env = make_env(EnvName::Pendulum, cfg.seed);
                let mut t = Trainer::new(cfg, env, ComputeDevice::cpu()).unwrap();
                let mut last = None;
                for _ in 0..43 {
                    last = Some(block(t.step()).unwrap());
                }
                let r = last.unwrap();
                let (c, a, e) = (
                    r.critic_loss.unwrap(),
                    r.actor_loss.unwrap(),
                    r.ess.unwrap(),
                );
                assert!(c.is_finite() && a.is_finite(), "{param} {name}: {c} {a}");
                assert!((1.0..=8.0).contains(&e), "{param} {name}: ESS {e}");
            }
        }
    }

    /// A diffusion (VP, ε-prediction) agent at playground size learns the pendulum: after
    /// 3,000 env steps (1,000 warm-up) its greedy return over 3 fixed-seed evaluation episodes
    /// is far above the untrained policy's. Measured (seed 0): untrained −1480, trained −820
    /// (+660); the bound asks for +300. About a minute in the test profile.
    #[test]
    fn diffusion_agent_learns_the_pendulum() {
        let cfg = TrainConfig {
            agent: Agent::Rfm,
            param: Parameterisation::Diffusion,
            seed: 0,
            ..TrainConfig::playground()
        };
        let env = make_env(EnvName::Pendulum, cfg.seed);
        let mut t = Trainer::new(cfg, env, ComputeDevice::cpu()).unwrap();
        let before = block(t.evaluate(3)).unwrap().mean_return;
        for _ in 0..3_000 {
            block(t.step()).unwrap();
        }
        let after = block(t.evaluate(3)).unwrap().mean_return;
        assert!(
            after > before + 300.0,
            "untrained {before}, trained {after}"
        );
    }
}
