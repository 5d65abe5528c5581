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
use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::{Device, Tensor};

use super::{
    NamedTensor, TensorStore, TrainConfig, TrainError, UpdateStats, check_finite, clip_global_norm,
    critic_step, export_module, import_module, pick_candidates, repeat_rows, td_target, tensor2,
};
use crate::device::{ComputeDevice, DeviceError, read_f32, read_scalar};
use crate::nets::critic::{Critic, CriticConfig, polyak};
use crate::nets::{OdeConfig, Parameterisation, Policy, PolicyConfig, Solver};
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
        let y = sample_flow(&self.actor, y0, s.clone(), self.cfg.lambda, &self.ode);
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

        // (1) On-policy latents for the batch states (the flow-matching data) and (2) for the
        // next states, in one batched sampler call; then the TD target from the target critics.
        let both = [batch.obs.as_slice(), batch.next_obs.as_slice()].concat();
        let mut y1 = self
            .sample_latents(&online, &both, 2 * n, true, rng)
            .await?;
        let y_next = y1.split_off(n * d);
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
        let (critic, critic_opt, critic_loss_v) = critic_step(
            &self.critic,
            &self.critic_opt,
            s_ad.clone(),
            a_ad,
            y,
            &self.cfg,
            step,
        )
        .await?;

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

/// GELU, tanh approximation, written as `x · σ(2·√(2/π)·(x + 0.044715 x³))` (the same function
/// as `0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³)))`). On the CPU backend this is about twice as fast
/// as burn's `gelu_approximate`, which calls `powf` and `tanh` per element.
fn gelu_tanh(x: Tensor<2>) -> Tensor<2> {
    const TWO_SQRT_2_OVER_PI: f32 = 2.0 * 0.797_884_6;
    let inner = (x.clone() * x.clone() * x.clone() * 0.044715 + x.clone()) * TWO_SQRT_2_OVER_PI;
    x * sigmoid(inner)
}

/// The flow sampler of [`Policy::sample`] for a [`Parameterisation::Flow`] policy, restated with
/// the cheaper GELU form and the state's first-layer contribution computed once per call
/// (the network function is the same; results agree to float rounding, which a test checks).
/// `y0`: `[rows, act]`, `s`: `[rows, obs]`, both on the plain device; returns `y(t_end)`.
fn sample_flow(
    policy: &Policy,
    y0: Tensor<2>,
    s: Tensor<2>,
    lambda: f32,
    ode: &OdeConfig,
) -> Tensor<2> {
    assert_eq!(
        policy.config.param,
        Parameterisation::Flow,
        "sample_flow: flow policies only"
    );
    let net = policy.valid();
    let device: Device = y0.device();
    let obs = net.config.state_dim;
    let act = net.config.act_dim;
    let w = net.input.weight.val();
    let w_y = w.clone().narrow(0, obs, act);
    let mut base = s.matmul(w.narrow(0, 0, obs));
    if let Some(b) = &net.input.bias {
        base = base + b.val().unsqueeze::<2>();
    }
    let drift = |y: Tensor<2>, t: f32| {
        let cond_h = net
            .input_cond
            .forward(net.conditioning(&[t], lambda, &device));
        let mut h = gelu_tanh(base.clone() + y.matmul(w_y.clone()) + cond_h);
        for block in &net.blocks {
            h = h.clone() + gelu_tanh(block.forward(h));
        }
        net.output.forward(h)
    };
    let h = (ode.t_end - ode.t_start) / ode.steps as f32;
    let mut y = y0;
    let mut t = ode.t_start;
    for i in 0..ode.steps {
        let t_next = if i + 1 == ode.steps {
            ode.t_end
        } else {
            ode.t_start + (i + 1) as f32 * h
        };
        let f0 = drift(y.clone(), t);
        y = match ode.solver {
            Solver::Euler => y + f0 * h,
            Solver::Heun => {
                let f1 = drift(y.clone() + f0.clone() * h, t_next);
                y + (f0 + f1) * (0.5 * h)
            }
        };
        t = t_next;
    }
    y
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_sampler_matches_the_policy_sampler() {
        let d = ComputeDevice::cpu();
        let dev = d.device();
        let (obs, act, rows) = (3, 2, 40);
        let policy = PolicyConfig {
            state_dim: obs,
            act_dim: act,
            hidden: 32,
            emb_width: 8,
            ..Default::default()
        }
        .init(dev, &mut rng::seeded(1));
        let mut r = rng::seeded(2);
        let y0 = tensor2(rng::normals(&mut r, rows * act), rows, act, dev);
        let s = tensor2(rng::normals(&mut r, rows * obs), rows, obs, dev);
        for solver in [Solver::Euler, Solver::Heun] {
            let ode = OdeConfig {
                solver,
                steps: 7,
                ..Default::default()
            };
            let want = policy
                .sample(y0.clone(), Some(s.clone()), 0.02, &ode, false)
                .y;
            let got = sample_flow(&policy, y0.clone(), s.clone(), 0.02, &ode);
            let (want, got) = (
                pollster::block_on(read_f32(want)).unwrap(),
                pollster::block_on(read_f32(got)).unwrap(),
            );
            for (a, b) in want.iter().zip(&got) {
                assert!(
                    (a - b).abs() < 1e-4 * (1.0 + a.abs()),
                    "{solver:?}: {a} vs {b}"
                );
            }
        }
    }
}
