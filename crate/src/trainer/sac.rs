//! Soft actor-critic (Haarnoja et al. 2018) with a tanh-squashed Gaussian actor and automatic
//! entropy tuning — the baseline, written like CleanRL's `sac_continuous_action.py`:
//!
//! 1. next actions `a' ~ π(·|s')`, TD target `r + γ (1 − done) (min(Q1', Q2')(s', a') − α log π(a'|s'))`;
//! 2. critic step (sum of the heads' MSE);
//! 3. actor step on `E[α log π(ã|s) − min(Q1, Q2)(s, ã)]`, `ã` reparameterised, with the
//!    just-updated critics;
//! 4. temperature step on `−E[α (log π(ã|s) + H_target)]` with `H_target = −act_dim`;
//! 5. Polyak update of the target critics.
//!
//! The actor is `critic_layers` × (Dense `actor_hidden` + ReLU) → (mean, log σ), with
//! `log σ = −5 + 3.5 (tanh(raw) + 1) ∈ [−5, 2]`, PyTorch-default init; the critic is the shared
//! twin [`Critic`].

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::{relu, softplus};
use burn::tensor::{Device, Tensor, TensorData};

use super::{
    NamedTensor, TensorStore, TrainConfig, TrainError, UpdateStats, check_finite, clip_global_norm,
    critic_step, export_module, import_module, td_target, tensor2,
};
use crate::device::{ComputeDevice, DeviceError, read_f32, read_scalar};
use crate::nets::critic::{Critic, CriticConfig, polyak};
use crate::nets::mlp::linear;
use crate::nets::squash;
use crate::replay::Batch;
use crate::rng::{self, Rng};

const LOG_STD_MIN: f32 = -5.0;
const LOG_STD_MAX: f32 = 2.0;

/// Gaussian actor `s → (mean, log σ)`, each `[n, act]`.
#[derive(Module, Debug)]
pub struct GaussianActor {
    pub trunk: Vec<Linear>,
    pub mean: Linear,
    pub log_std: Linear,
}

impl GaussianActor {
    pub fn new(
        obs_dim: usize,
        act_dim: usize,
        hidden: usize,
        layers: usize,
        device: &Device,
        rng: &mut Rng,
    ) -> Self {
        let mut trunk = Vec::with_capacity(layers);
        let mut d_in = obs_dim;
        for _ in 0..layers {
            trunk.push(linear(d_in, hidden, device, rng));
            d_in = hidden;
        }
        Self {
            trunk,
            mean: linear(hidden, act_dim, device, rng),
            log_std: linear(hidden, act_dim, device, rng),
        }
    }

    /// `s: [n, obs]` → `(mean, log σ)`, each `[n, act]`, `log σ ∈ [−5, 2]`.
    pub fn forward(&self, s: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let mut h = s;
        for l in &self.trunk {
            h = relu(l.forward(h));
        }
        let raw = squash(self.log_std.forward(h.clone()));
        let log_std = (raw + 1.0) * (0.5 * (LOG_STD_MAX - LOG_STD_MIN)) + LOG_STD_MIN;
        (self.mean.forward(h), log_std)
    }
}

/// Reparameterised tanh-Gaussian sample `a = tanh(μ + σ ε)` and its log-density
/// `log π(a) = Σ_j [log N(ε_j) − log σ_j − log(1 − tanh²(u_j))]`, with the stable
/// `log(1 − tanh² u) = 2 (log 2 − u − softplus(−2u))`. Returns `(a [n, act], log π [n, 1])`.
pub fn tanh_gaussian_sample(
    mean: Tensor<2>,
    log_std: Tensor<2>,
    eps: Tensor<2>,
) -> (Tensor<2>, Tensor<2>) {
    let u = mean + log_std.clone().exp() * eps.clone();
    let log_normal = eps.square() * (-0.5) - log_std - 0.5 * (2.0 * std::f32::consts::PI).ln();
    let log_jac =
        (u.clone() * (-1.0) - softplus(u.clone() * (-2.0), 1.0) + std::f32::consts::LN_2) * 2.0;
    let logp = (log_normal - log_jac).sum_dim(1);
    (squash(u), logp)
}

/// The learned temperature `log α`.
#[derive(Module, Debug)]
pub struct LogAlpha {
    pub value: Param<Tensor<1>>,
}

/// Networks, optimisers and settings of a SAC agent.
pub struct SacAgent {
    actor: GaussianActor,
    actor_opt: ModuleOptimizer,
    critic: Critic,
    target: Critic,
    critic_opt: ModuleOptimizer,
    log_alpha: LogAlpha,
    alpha_opt: ModuleOptimizer,
    target_entropy: f32,
    device: ComputeDevice,
    obs_dim: usize,
    act_dim: usize,
    cfg: TrainConfig,
}

impl SacAgent {
    /// Build the actor then the critic from `rng` (target = copy of the critic).
    pub fn new(
        cfg: &TrainConfig,
        obs_dim: usize,
        act_dim: usize,
        device: &ComputeDevice,
        rng: &mut Rng,
    ) -> Self {
        let dev = device.autodiff();
        let actor = GaussianActor::new(
            obs_dim,
            act_dim,
            cfg.actor_hidden,
            cfg.critic_layers,
            &dev,
            rng,
        );
        let critic = CriticConfig {
            layers: cfg.critic_layers,
            ..CriticConfig::new(obs_dim, act_dim, cfg.critic_hidden)
        }
        .init(&dev, rng);
        let target = critic.valid();
        let log_alpha = LogAlpha {
            value: Param::from_data(TensorData::new(vec![cfg.init_alpha.ln()], [1]), &dev),
        };
        Self {
            actor,
            actor_opt: AdamConfig::new().init(),
            critic,
            target,
            critic_opt: AdamConfig::new().init(),
            log_alpha,
            alpha_opt: AdamConfig::new().init(),
            target_entropy: -(act_dim as f32),
            device: device.clone(),
            obs_dim,
            act_dim,
            cfg: cfg.clone(),
        }
    }

    /// An action in `[-1, 1]^act`: a policy sample (`explore`) or `tanh(mean)`.
    pub async fn act(
        &self,
        obs: &[f32],
        explore: bool,
        rng: &mut Rng,
    ) -> Result<Vec<f32>, DeviceError> {
        let dev = self.device.device();
        let (mean, log_std) =
            self.actor
                .valid()
                .forward(tensor2(obs.to_vec(), 1, self.obs_dim, dev));
        let a = if explore {
            let eps = tensor2(rng::normals(rng, self.act_dim), 1, self.act_dim, dev);
            tanh_gaussian_sample(mean, log_std, eps).0
        } else {
            squash(mean)
        };
        read_f32(a).await
    }

    /// One SAC update from `batch`; nothing is committed unless every loss and gradient norm is finite.
    pub(crate) async fn update(
        &mut self,
        batch: &Batch,
        step: usize,
        rng: &mut Rng,
    ) -> Result<UpdateStats, TrainError> {
        let (n, d, o) = (batch.n, self.act_dim, self.obs_dim);
        let dev = self.device.device().clone();
        let ad = self.device.autodiff();
        let alpha = read_scalar(self.log_alpha.value.val().inner().exp()).await?;

        // (1) TD target with the entropy bonus.
        let s_next = tensor2(batch.next_obs.clone(), n, o, &dev);
        let (m, ls) = self.actor.valid().forward(s_next.clone());
        let (a_next, logp_next) =
            tanh_gaussian_sample(m, ls, tensor2(rng::normals(rng, n * d), n, d, &dev));
        let v_next = self.target.q_min(s_next, a_next) - logp_next * alpha;
        let y = td_target(
            &batch.rew,
            &batch.done,
            &read_f32(v_next).await?,
            self.cfg.gamma,
        );

        // (2) Critic step.
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

        // (3) Actor step through the updated critics.
        let (m, ls) = self.actor.forward(s_ad.clone());
        let (a, logp) = tanh_gaussian_sample(m, ls, tensor2(rng::normals(rng, n * d), n, d, &ad));
        let q = critic.q_min(s_ad, a);
        let actor_loss = (logp.clone() * alpha - q).mean();
        let value = actor_loss.clone().inner();
        let grads = GradientsParams::from_grads(actor_loss.backward(), &self.actor);
        let c = clip_global_norm(grads, &self.actor, self.cfg.grad_clip, value).await?;
        let actor_loss_v = check_finite(step, "actor loss", c.loss)?;
        check_finite(step, "actor gradient norm", c.norm)?;
        let mut actor_opt = self.actor_opt.clone();
        let actor = actor_opt.step(self.cfg.actor_lr, self.actor.clone(), c.grads);

        // (4) Temperature step.
        let logp = logp.inner().autodiff();
        let alpha_loss = (self.log_alpha.value.val().exp().unsqueeze::<2>()
            * (logp + self.target_entropy)
            * (-1.0))
            .mean();
        check_finite(
            step,
            "alpha loss",
            read_scalar(alpha_loss.clone().inner()).await?,
        )?;
        let grads = GradientsParams::from_grads(alpha_loss.backward(), &self.log_alpha);
        let mut alpha_opt = self.alpha_opt.clone();
        let log_alpha = alpha_opt.step(self.cfg.alpha_lr, self.log_alpha.clone(), grads);
        let new_alpha = check_finite(
            step,
            "alpha",
            read_scalar(log_alpha.value.val().inner().exp()).await?,
        )?;

        // (5) Commit, then Polyak.
        self.target = polyak(self.target.clone(), &critic, self.cfg.tau);
        self.critic = critic;
        self.critic_opt = critic_opt;
        self.actor = actor;
        self.actor_opt = actor_opt;
        self.log_alpha = log_alpha;
        self.alpha_opt = alpha_opt;
        Ok(UpdateStats {
            critic_loss: critic_loss_v,
            actor_loss: actor_loss_v,
            ess: None,
            alpha: Some(new_alpha),
        })
    }

    pub(crate) async fn export(&self, out: &mut Vec<NamedTensor>) -> Result<(), DeviceError> {
        export_module("actor", &self.actor, out).await?;
        export_module("critic", &self.critic, out).await?;
        export_module("target", &self.target, out).await?;
        export_module("logAlpha", &self.log_alpha, out).await
    }

    pub(crate) fn import(self, store: &mut TensorStore) -> Result<Self, String> {
        Ok(Self {
            actor: import_module("actor", self.actor, store)?,
            critic: import_module("critic", self.critic, store)?,
            target: import_module("target", self.target, store)?,
            log_alpha: import_module("logAlpha", self.log_alpha, store)?,
            ..self
        })
    }
}

/// Read access for the playground's views (`trainer::views`).
impl SacAgent {
    pub(crate) fn actor(&self) -> &GaussianActor {
        &self.actor
    }
    pub(crate) fn critic(&self) -> &Critic {
        &self.critic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_gaussian_log_prob_matches_the_closed_form() {
        let d = ComputeDevice::cpu();
        let dev = d.device();
        let (n, k) = (4, 2);
        let mean = vec![0.3f32, -1.2, 0.0, 2.0, -0.5, 0.1, 1.5, -2.5];
        let log_std = vec![-0.5f32, 0.2, -2.0, 0.7, 0.0, -1.0, 1.0, -4.0];
        let eps = vec![0.4f32, -1.1, 2.0, 0.05, -0.3, 1.7, -0.9, 0.6];
        let (a, logp) = tanh_gaussian_sample(
            tensor2(mean.clone(), n, k, dev),
            tensor2(log_std.clone(), n, k, dev),
            tensor2(eps.clone(), n, k, dev),
        );
        let a = pollster::block_on(read_f32(a)).unwrap();
        let logp = pollster::block_on(read_f32(logp)).unwrap();
        for (i, &got) in logp.iter().enumerate() {
            // log of N(atanh a; μ, σ) / (1 − a²), computed in f64 from u directly.
            let mut want = 0.0f64;
            for j in 0..k {
                let idx = i * k + j;
                let (mu, sigma) = (f64::from(mean[idx]), f64::from(log_std[idx]).exp());
                let u = mu + sigma * f64::from(eps[idx]);
                assert!((f64::from(a[idx]) - u.tanh()).abs() < 1e-6);
                let log_n = -0.5 * ((u - mu) / sigma).powi(2)
                    - sigma.ln()
                    - 0.5 * (2.0 * std::f64::consts::PI).ln();
                let log_jac = (1.0 / u.cosh().powi(2)).ln();
                want += log_n - log_jac;
            }
            assert!(
                (f64::from(got) - want).abs() < 1e-4 * (1.0 + want.abs()),
                "row {i}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn log_std_is_bounded() {
        let d = ComputeDevice::cpu();
        let actor = GaussianActor::new(3, 2, 8, 2, d.device(), &mut rng::seeded(0));
        let s = tensor2(vec![100.0, -100.0, 50.0, 0.0, 0.0, 0.0], 2, 3, d.device());
        let (_, ls) = actor.forward(s);
        let ls = pollster::block_on(read_f32(ls)).unwrap();
        assert!(
            ls.iter().all(|v| (LOG_STD_MIN..=LOG_STD_MAX).contains(v)),
            "{ls:?}"
        );
    }
}
