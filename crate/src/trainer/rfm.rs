//! The RFM actor-critic, in the released update order (project notes §4b):
//!
//! 1. on-policy latents `y1` for the batch states: `C` candidates × ODE steps, one picked per
//!    state by softmax(`min(Q1, Q2)/λ`) — the flow-matching data;
//! 2. the same sampling on the next states, `a' = tanh(y1')`, TD target
//!    `r + γ (1 − done) min(Q1', Q2')(s', a')` from the target critics (no entropy term);
//! 3. critic step (sum of the two heads' MSE, Adam, global-norm clip);
//! 4. posterior estimate with the *just-updated* critics: `t ~ U[0.01, 0.99]`,
//!    `x_t = t·y1 + (1 − t)·y0`, K candidates `x1`, `Q` and `∇_a Q` at `tanh(x1)` → the tanh-latent
//!    Boltzmann log-density and its gradient → the chosen estimator → velocity target;
//! 5. actor step: MSE of `v_θ(t, x_t, s)` to the stop-gradient target;
//! 6. Polyak update of the target critics.
//!
//! Acting: `C` latent candidates from the flow, `a = tanh(y)`, pick by softmax(`Q/λ`) while
//! training, argmax `Q` when evaluating.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::tanh;

use super::{
    NamedTensor, TensorStore, TrainConfig, TrainError, UpdateStats, check_finite, clip_global_norm,
    export_module, import_module, pick_candidates, repeat_rows, td_target, tensor2,
};
use crate::device::{ComputeDevice, DeviceError, read_f32, read_scalar};
use crate::nets::critic::{Critic, CriticConfig, polyak};
use crate::nets::{OdeConfig, Parameterisation, Policy, PolicyConfig};
use crate::replay::Batch;
use crate::rfm::estimators::{self, Estimator, PosteriorBatch};
use crate::rfm::path::Path;
use crate::rfm::targets::boltzmann_latent_log_prob_grad;
use crate::rng::{self, Rng};

/// Networks, optimisers and settings of an RFM agent.
pub struct RfmAgent {
    /// Velocity net `v_θ(t, y, s)` on the autodiff device.
    actor: Policy,
    actor_opt: ModuleOptimizer,
    /// Twin critic on the autodiff device.
    critic: Critic,
    /// Polyak-averaged twin critic on the plain device.
    target: Critic,
    critic_opt: ModuleOptimizer,
    estimator: Estimator,
    ode: OdeConfig,
    path: Path,
    device: ComputeDevice,
    obs_dim: usize,
    act_dim: usize,
    cfg: TrainConfig,
}

impl RfmAgent {
    /// Build the actor then the critic from `rng` (target = copy of the critic).
    pub fn new(
        cfg: &TrainConfig,
        estimator: Estimator,
        obs_dim: usize,
        act_dim: usize,
        device: &ComputeDevice,
        rng: &mut Rng,
    ) -> Self {
        let dev = device.autodiff();
        let actor = PolicyConfig {
            state_dim: obs_dim,
            act_dim,
            hidden: cfg.actor_hidden,
            blocks: cfg.actor_blocks,
            emb_width: cfg.emb_width,
            param: Parameterisation::Flow,
            ..Default::default()
        }
        .init(&dev, rng);
        let critic = CriticConfig {
            layers: cfg.critic_layers,
            ..CriticConfig::new(obs_dim, act_dim, cfg.critic_hidden)
        }
        .init(&dev, rng);
        let target = critic.valid();
        Self {
            actor,
            actor_opt: AdamConfig::new().init(),
            critic,
            target,
            critic_opt: AdamConfig::new().init(),
            estimator,
            ode: OdeConfig {
                solver: cfg.solver,
                steps: cfg.ode_steps,
                ..Default::default()
            },
            path: Path::Linear,
            device: device.clone(),
            obs_dim,
            act_dim,
            cfg: cfg.clone(),
        }
    }

    /// For `n` states (`[n*obs]`): `C` flow samples each, `a = tanh(y)`, one picked per state by
    /// `critic`. Returns the picked latents `y` (`[n*act]`).
    async fn sample_latents(
        &self,
        critic: &Critic,
        states: &[f32],
        n: usize,
        explore: bool,
        rng: &mut Rng,
    ) -> Result<Vec<f32>, DeviceError> {
        let (c, d, o) = (self.cfg.candidates, self.act_dim, self.obs_dim);
        let dev = self.device.device();
        let y0 = tensor2(rng::normals(rng, n * c * d), n * c, d, dev);
        let s = tensor2(repeat_rows(states, o, c), n * c, o, dev);
        let y = self
            .actor
            .sample(y0, Some(s.clone()), self.cfg.lambda, &self.ode, false)
            .y;
        let q = critic.q_min(s, tanh(y.clone()));
        let y = read_f32(y).await?;
        let q = read_f32(q).await?;
        let picks = pick_candidates(&q, c, self.cfg.lambda, explore, rng);
        let mut out = Vec::with_capacity(n * d);
        for (i, p) in picks.into_iter().enumerate() {
            let row = i * c + p;
            out.extend_from_slice(&y[row * d..(row + 1) * d]);
        }
        Ok(out)
    }

    /// An action in `[-1, 1]^act` for one observation.
    pub async fn act(
        &self,
        obs: &[f32],
        explore: bool,
        rng: &mut Rng,
    ) -> Result<Vec<f32>, DeviceError> {
        let critic = self.critic.valid();
        let y = self.sample_latents(&critic, obs, 1, explore, rng).await?;
        Ok(y.into_iter().map(f32::tanh).collect())
    }

    /// One actor-critic update from `batch`; nothing is committed unless every loss and
    /// gradient norm is finite.
    pub(crate) async fn update(
        &mut self,
        batch: &Batch,
        step: usize,
        rng: &mut Rng,
    ) -> Result<UpdateStats, TrainError> {
        let (n, d, o) = (batch.n, self.act_dim, self.obs_dim);
        let (k, lambda) = (self.cfg.posterior_samples, self.cfg.lambda);
        let dev = self.device.device().clone();
        let ad = self.device.autodiff();
        let online = self.critic.valid();

        // (1) On-policy latents for the batch states: the flow-matching data.
        let y1 = self
            .sample_latents(&online, &batch.obs, n, true, rng)
            .await?;
        // (2) Next-state actions and the TD target from the target critics.
        let y_next = self
            .sample_latents(&online, &batch.next_obs, n, true, rng)
            .await?;
        let a_next = tanh(tensor2(y_next, n, d, &dev));
        let q_next = read_f32(
            self.target
                .q_min(tensor2(batch.next_obs.clone(), n, o, &dev), a_next),
        )
        .await?;
        let y = td_target(&batch.rew, &batch.done, &q_next, self.cfg.gamma);

        // (3) Critic step.
        let s_ad = tensor2(batch.obs.clone(), n, o, &ad);
        let a_ad = tensor2(batch.act.clone(), n, d, &ad);
        let y_ad = tensor2(y, n, 1, &ad);
        let (q1, q2) = self.critic.forward(s_ad.clone(), a_ad);
        let critic_loss = (q1 - y_ad.clone()).square().mean() + (q2 - y_ad).square().mean();
        let critic_loss_v = check_finite(
            step,
            "critic loss",
            read_scalar(critic_loss.clone().inner()).await?,
        )?;
        let grads = GradientsParams::from_grads(critic_loss.backward(), &self.critic);
        let (grads, norm) = clip_global_norm(grads, &self.critic, self.cfg.grad_clip).await?;
        check_finite(step, "critic gradient norm", norm)?;
        let mut critic_opt = self.critic_opt.clone();
        let critic = critic_opt.step(self.cfg.critic_lr, self.critic.clone(), grads);

        // (4) Posterior estimate with the just-updated critics.
        let t: Vec<f32> = (0..n).map(|_| rng::uniform(rng, 0.01, 0.99)).collect();
        let y0 = rng::normals(rng, n * d);
        let mut xt = vec![0.0f32; n * d];
        for i in 0..n {
            for j in 0..d {
                xt[i * d + j] = t[i] * y1[i * d + j] + (1.0 - t[i]) * y0[i * d + j];
            }
        }
        let cand = estimators::draw_candidates(&self.path, &xt, &t, n, k, d, rng);
        let updated = critic.valid();
        let s_k = tensor2(repeat_rows(&batch.obs, o, k), n * k, o, &dev);
        let x1 = tensor2(cand.x1.clone(), n * k, d, &dev);
        let (q, gq) = updated.q_min_and_grad(s_k, tanh(x1));
        let q = read_f32(q).await?;
        let gq = read_f32(gq).await?;
        let mut logp1 = vec![0.0f32; n * k];
        let mut grad_logp1 = vec![0.0f32; n * k * d];
        let est_err = |message: String| TrainError::Estimator { step, message };
        if let Some(&bad) = q.iter().find(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite {
                step,
                what: "Q at the posterior samples",
                value: bad,
            });
        }
        boltzmann_latent_log_prob_grad(&q, &gq, &cand.x1, lambda, &mut logp1, &mut grad_logp1)
            .map_err(|e| est_err(e.to_string()))?;
        let pb = PosteriorBatch {
            n,
            k,
            d,
            xt: &xt,
            t: &t,
            x0: &cand.x0,
            x1: &cand.x1,
            logp1: &logp1,
            grad_logp1: &grad_logp1,
        };
        let est = estimators::estimate(&self.path, &self.estimator, &pb)
            .map_err(|e| est_err(e.to_string()))?;
        let target = estimators::velocity_target(&self.path, &t, &est.mu0, &est.mu1, n, d);
        if let Some(&bad) = target.iter().find(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite {
                step,
                what: "velocity target",
                value: bad,
            });
        }
        let ess = est.ess.iter().sum::<f32>() / n as f32;

        // (5) Actor step on the stop-gradient target.
        let cond = self.actor.conditioning(&t, lambda, &ad);
        let pred = self.actor.forward(tensor2(xt, n, d, &ad), Some(s_ad), cond);
        let actor_loss = (pred - tensor2(target, n, d, &ad)).square().mean();
        let actor_loss_v = check_finite(
            step,
            "actor loss",
            read_scalar(actor_loss.clone().inner()).await?,
        )?;
        let grads = GradientsParams::from_grads(actor_loss.backward(), &self.actor);
        let (grads, norm) = clip_global_norm(grads, &self.actor, self.cfg.grad_clip).await?;
        check_finite(step, "actor gradient norm", norm)?;
        let mut actor_opt = self.actor_opt.clone();
        let actor = actor_opt.step(self.cfg.actor_lr, self.actor.clone(), grads);

        // (6) Commit, then Polyak.
        self.target = polyak(self.target.clone(), &critic, self.cfg.tau);
        self.critic = critic;
        self.critic_opt = critic_opt;
        self.actor = actor;
        self.actor_opt = actor_opt;
        Ok(UpdateStats {
            critic_loss: critic_loss_v,
            actor_loss: actor_loss_v,
            ess: Some(ess),
            alpha: None,
        })
    }

    pub(crate) async fn export(&self, out: &mut Vec<NamedTensor>) -> Result<(), DeviceError> {
        export_module("actor", &self.actor, out).await?;
        export_module("critic", &self.critic, out).await?;
        export_module("target", &self.target, out).await
    }

    pub(crate) fn import(self, store: &mut TensorStore) -> Result<Self, String> {
        Ok(Self {
            actor: import_module("actor", self.actor, store)?,
            critic: import_module("critic", self.critic, store)?,
            target: import_module("target", self.target, store)?,
            ..self
        })
    }
}
