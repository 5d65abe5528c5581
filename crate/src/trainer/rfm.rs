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
//!
//! Candidate sampling (acting, steps 1 and 2) is one function, `sample_latents`. On the CPU the
//! whole update runs on host copies of the actor and the online critic (`nets::host`): they are
//! read back from the burn modules only when those are newer (at start, after an import), the
//! critic and actor steps update them in place of burn's autodiff, and the burn modules are
//! refreshed from them after every update (for the views, export and the target's Polyak
//! average).

use std::sync::{Mutex, MutexGuard};

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};

use super::{
    NamedTensor, TensorStore, TrainConfig, TrainError, UpdateStats, check_finite, clip_global_norm,
    critic_step, export_module, import_module, pick_candidates, repeat_rows, td_target, tensor2,
};
use crate::device::{BackendKind, ComputeDevice, DeviceError, read_f32, read_f32_pair};
use crate::nets::critic::{Critic, CriticConfig, polyak};
use crate::nets::host::{self, HostCritic, HostPolicy, HostSampler};
use crate::nets::{OdeConfig, Parameterisation, Policy, PolicyConfig, squash};
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
    /// Host copies of `actor` and `critic` (`nets::host`): on the CPU they sample, answer the
    /// views and are what the training steps update (the burn modules are refreshed from them);
    /// `None` when the burn modules are newer (at start, after an import), loaded on first use.
    host: Mutex<Option<HostNets>>,
    /// Adam's moments and the buffers of the CPU training steps.
    host_train: HostTrain,
}

/// Optimiser state and buffers of the CPU training steps (`nets::host::actor`,
/// `HostCritic::td_loss_and_grads`); the weights they update are the copies in `host`.
#[derive(Debug, Default)]
struct HostTrain {
    actor_adam: host::optim::HostAdam,
    critic_adam: host::optim::HostAdam,
    actor_scratch: host::actor::ActorScratch,
    critic_scratch: host::critic::CriticTrainScratch,
}

/// `module` with its float parameters replaced by `params` (burn's visiting order and shapes;
/// the host copies list theirs in that order, which the host tests check).
fn refreshed<M: Module>(prefix: &str, module: M, params: Vec<(Vec<usize>, &[f32])>) -> M {
    let named = params
        .into_iter()
        .enumerate()
        .map(|(i, (shape, v))| NamedTensor {
            name: format!("{prefix}.{i}"),
            shape,
            data: v.to_vec(),
        })
        .collect();
    import_module(prefix, module, &mut TensorStore::new(named))
        .expect("host parameters follow the burn module's order and shapes")
}

/// The nets the CPU sampling path runs on, and its reusable buffers.
pub(crate) struct HostNets {
    pub(crate) policy: HostPolicy,
    pub(crate) critic: HostCritic,
    pub(crate) sampler: HostSampler,
}

impl HostNets {
    async fn load(actor: &Policy, critic: &Critic) -> Result<Self, DeviceError> {
        Ok(Self {
            policy: host::load::policy(actor).await?,
            critic: host::load::critic(critic).await?,
            sampler: HostSampler::default(),
        })
    }
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
            host: Mutex::new(None),
            host_train: HostTrain::default(),
        }
    }

    /// For `n` states (`[n*obs]`): `C` flow samples each, `a = tanh(y)`, one picked per state by
    /// the online critic. Returns the picked latents `y` (`[n*act]`).
    ///
    /// Random draws, in order: `y0 ~ N(0, I)` (`[n·C, act]`, row `i·C + j` is candidate `j` of
    /// state `i`), then one uniform per state for the softmax pick when `explore`. On the CPU
    /// the ODE and the scores run on the host copies of the nets ([`crate::nets::host`]);
    /// elsewhere (WebGPU) on the device through [`Policy::sample`]. Same function, same draws.
    async fn sample_latents(
        &self,
        states: &[f32],
        n: usize,
        explore: bool,
        rng: &mut Rng,
    ) -> Result<Vec<f32>, DeviceError> {
        let (c, d, o) = (self.cfg.candidates, self.act_dim, self.obs_dim);
        let mut y = rng::normals(rng, n * c * d);
        let s = repeat_rows(states, o, c);
        let lambda = self.cfg.lambda;
        let host_q = self
            .with_host(|h| {
                let mut q = vec![0.0f32; n * c];
                h.sampler
                    .sample_scored(&h.policy, &h.critic, &mut y, &s, lambda, &self.ode, &mut q);
                q
            })
            .await?;
        let q = if let Some(q) = host_q {
            q
        } else {
            let dev = self.device.device();
            let s = tensor2(s, n * c, o, dev);
            let out = self.actor.valid().sample(
                tensor2(y, n * c, d, dev),
                Some(s.clone()),
                self.cfg.lambda,
                &self.ode,
                false,
            );
            let q = self.critic.valid().q_min(s, squash(out.y.clone()));
            let (y_read, q) = read_f32_pair(out.y, q).await?;
            y = y_read;
            q
        };
        let picks = pick_candidates(&q, c, self.cfg.lambda, explore, rng);
        let mut out = Vec::with_capacity(n * d);
        for (i, p) in picks.into_iter().enumerate() {
            let row = i * c + p;
            out.extend_from_slice(&y[row * d..(row + 1) * d]);
        }
        Ok(out)
    }

    /// `f` on the host copies of the nets (loaded when stale) when the agent trains on the CPU;
    /// `None` on other devices. The copies are taken out of the cell while in use, so no lock
    /// is held across an await.
    pub(crate) async fn with_host<R>(
        &self,
        f: impl FnOnce(&mut HostNets) -> R,
    ) -> Result<Option<R>, DeviceError> {
        if self.device.kind() != BackendKind::Cpu {
            return Ok(None);
        }
        let cached = self.host_cell().take();
        let mut nets = match cached {
            Some(nets) => nets,
            None => HostNets::load(&self.actor, &self.critic).await?,
        };
        let r = f(&mut nets);
        *self.host_cell() = Some(nets);
        Ok(Some(r))
    }

    /// The cache of host copies (poisoning is harmless: the value is replaced whole).
    fn host_cell(&self) -> MutexGuard<'_, Option<HostNets>> {
        self.host.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An action in `[-1, 1]^act` for one observation.
    pub async fn act(
        &self,
        obs: &[f32],
        explore: bool,
        rng: &mut Rng,
    ) -> Result<Vec<f32>, DeviceError> {
        let y = self.sample_latents(obs, 1, explore, rng).await?;
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

        // (1) On-policy latents for the batch states (the flow-matching data) and (2) for the
        // next states, in one batched sampler call; then the TD target from the target critics.
        let both = [batch.obs.as_slice(), batch.next_obs.as_slice()].concat();
        let mut y1 = self.sample_latents(&both, 2 * n, true, rng).await?;
        let y_next = y1.split_off(n * d);
        let a_next = squash(tensor2(y_next, n, d, &dev));
        let q_next = read_f32(
            self.target
                .q_min(tensor2(batch.next_obs.clone(), n, o, &dev), a_next),
        )
        .await?;
        let y = td_target(&batch.rew, &batch.done, &q_next, self.cfg.gamma);

        // (3) Critic step: on the CPU by the host's explicit backward pass and Adam on the
        // master copy (committed at (6) with everything else), elsewhere by burn.
        // The host copies are taken out of the cell for the update: an early return leaves it
        // empty, so the next use reloads them from the (uncommitted, unchanged) burn modules.
        let mut host = if self.device.kind() == BackendKind::Cpu {
            let cached = self
                .host
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            Some(match cached {
                Some(h) => h,
                None => HostNets::load(&self.actor, &self.critic).await?,
            })
        } else {
            None
        };
        let s_ad = tensor2(batch.obs.clone(), n, o, &ad);
        let (critic, critic_opt, critic_loss_v, host_critic) = if let Some(h) = &host {
            let mut hc = h.critic.clone();
            let mut adam = self.host_train.critic_adam.clone();
            let (loss, mut grads) = hc.td_loss_and_grads(
                &batch.obs,
                &batch.act,
                &y,
                &mut self.host_train.critic_scratch,
            );
            let loss = check_finite(step, "critic loss", loss)?;
            let norm = host::optim::global_norm(&grads);
            check_finite(step, "critic gradient norm", norm)?;
            host::optim::clip(&mut grads, norm, self.cfg.grad_clip);
            adam.step(hc.params_mut(), &grads, self.cfg.critic_lr);
            let critic = refreshed("critic", self.critic.clone(), hc.params());
            (critic, self.critic_opt.clone(), loss, Some((hc, adam)))
        } else {
            let a_ad = tensor2(batch.act.clone(), n, d, &ad);
            let (critic, critic_opt, loss) = critic_step(
                &self.critic,
                &self.critic_opt,
                s_ad.clone(),
                a_ad,
                y,
                &self.cfg,
                step,
            )
            .await?;
            (critic, critic_opt, loss, None)
        };

        // (4) Posterior estimate with the just-updated critics.
        let t: Vec<f32> = (0..n).map(|_| rng::uniform(rng, 0.01, 0.99)).collect();
        let y0 = rng::normals(rng, n * d);
        let mut xt = vec![0.0f32; n * d];
        for i in 0..n {
            for j in 0..d {
                xt[i * d + j] = t[i] * y1[i * d + j] + (1.0 - t[i]) * y0[i * d + j];
            }
        }
        let cand =
            estimators::draw_candidates_from(&self.cfg.proposal, &self.path, &xt, &t, n, k, d, rng);
        let s_k = repeat_rows(&batch.obs, o, k);
        let (q, gq) = if let Some((hc, _)) = &host_critic {
            // On the host copy of the just-updated critic.
            let a: Vec<f32> = cand.x1.iter().map(|u| u.tanh()).collect();
            let (mut q, mut gq) = (vec![0.0f32; n * k], vec![0.0f32; n * k * d]);
            hc.q_min_and_grad(&s_k, &a, &mut q, &mut gq);
            (q, gq)
        } else {
            let updated = critic.valid();
            let x1 = tensor2(cand.x1.clone(), n * k, d, &dev);
            let (q, gq) = updated.q_min_and_grad(tensor2(s_k, n * k, o, &dev), squash(x1));
            read_f32_pair(q, gq).await?
        };
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
            log_iw: &cand.log_iw,
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

        // (5) Actor step on the stop-gradient target: on the CPU by the host's explicit
        // backward pass and Adam (`nets::host::actor`, the master copy of the actor's weights
        // and moments; the burn module is refreshed from it), elsewhere by burn's autodiff.
        let mut actor_opt = self.actor_opt.clone();
        let (actor, actor_loss_v) = if let Some(h) = &mut host {
            let ht = &mut self.host_train;
            let (loss, mut grads) = host::actor::loss_and_grads(
                &h.policy,
                &batch.obs,
                &xt,
                &t,
                lambda,
                &target,
                &mut ht.actor_scratch,
            );
            let loss = check_finite(step, "actor loss", loss)?;
            let norm = host::optim::global_norm(&grads);
            check_finite(step, "actor gradient norm", norm)?;
            host::optim::clip(&mut grads, norm, self.cfg.grad_clip);
            // Nothing below can fail: the host policy and its moments change in place.
            ht.actor_adam
                .step(h.policy.params_mut(), &grads, self.cfg.actor_lr);
            let actor = refreshed("actor", self.actor.clone(), h.policy.params());
            (actor, loss)
        } else {
            let cond = self.actor.conditioning(&t, lambda, &ad);
            let pred = self.actor.forward(tensor2(xt, n, d, &ad), Some(s_ad), cond);
            let actor_loss = (pred - tensor2(target, n, d, &ad)).square().mean();
            let value = actor_loss.clone().inner();
            let grads = GradientsParams::from_grads(actor_loss.backward(), &self.actor);
            let c = clip_global_norm(grads, &self.actor, self.cfg.grad_clip, value).await?;
            let actor_loss_v = check_finite(step, "actor loss", c.loss)?;
            check_finite(step, "actor gradient norm", c.norm)?;
            let actor = actor_opt.step(self.cfg.actor_lr, self.actor.clone(), c.grads);
            (actor, actor_loss_v)
        };

        // (6) Commit, then Polyak. On the CPU the sampler's host copies are the new weights
        // themselves (no read-back before the next acting step).
        self.target = polyak(self.target.clone(), &critic, self.cfg.tau);
        self.critic = critic;
        self.critic_opt = critic_opt;
        self.actor = actor;
        self.actor_opt = actor_opt;
        if let (Some(mut h), Some((critic, adam))) = (host, host_critic) {
            h.critic = critic;
            self.host_train.critic_adam = adam;
            *self.host.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(h);
        }
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
            host: Mutex::new(None),
            ..self
        })
    }
}

/// Read access for the playground's views (`trainer::views`).
impl RfmAgent {
    pub(crate) fn actor(&self) -> &Policy {
        &self.actor
    }
    pub(crate) fn critic(&self) -> &Critic {
        &self.critic
    }
    pub(crate) fn ode(&self) -> &OdeConfig {
        &self.ode
    }
}
