//! The one network seam under the training algorithms: what RFM (and the sampler mode) ask of
//! their networks, with two implementations chosen once, when the agent is built.
//!
//! - [`PolicyNets`]: the policy alone (sampler mode): ODE samples, a staged actor step, commit,
//!   named export / import.
//! - [`RfmNets`]: policy plus twin critic and its Polyak target (RL): candidate latents with
//!   their `min(Q1, Q2)` scores, target-critic `Q` for the TD target, a staged critic step,
//!   `Q` and `∇ₐQ` with the staged critic, a staged actor step, a whole staged RFM update
//!   (`rfm_update`, by default those steps on the host pipeline), commit + Polyak, export /
//!   import.
//!
//! Implementations: [`host`] (the hand-written CPU kernels of `nets::host`: fused sampler,
//! explicit backward passes, global-norm clip, Adam; every buffer on the host) and [`burn`]
//! (burn modules with autodiff, for WebGPU; every readback async). Both build the same weights
//! from the same seed, clip by the global gradient norm (factor `max / (norm + 1e-6)` above
//! `max`) and use Adam with burn's defaults, so they agree up to float rounding (the parity
//! suite in `tests.rs` runs the same steps on both). [`Policy`] / [`Nets`] are the enum
//! dispatchers; [`Nets::new`] is the only place the implementation is chosen from the device.
//!
//! Staging: a step never changes the committed weights; `commit` does, after the caller's
//! checks passed. A failed update leaves the last committed weights (the next step restages
//! from them).
//!
//! Shapes (row-major): `s [rows·obs]`, `y`, `a`, `xt`, `target [rows·act]`, `t`, `q [rows]`.

// The forwarding macros come before the implementations' modules, which use them.
macro_rules! dispatch {
    ($self:expr, $n:ident => $e:expr) => {
        match $self {
            Self::Host($n) => $e,
            Self::Burn($n) => $e,
        }
    };
}

/// `via_actor!(self, n => …)`: `n` is `self.actor` (shared or mutable, as `self` is).
macro_rules! via_actor {
    ($self:expr, $n:ident => $e:expr) => {
        match $self {
            Self { actor: $n, .. } => $e,
        }
    };
}

/// `PolicyNets` for `$ty` by forwarding each method to the value `$reach!(self, n => …)` binds
/// to `n`: the chosen implementation for the dispatch enums (`Policy`, `Nets`; `dispatch!`),
/// the actor for the two RL implementations (`HostNets`, `BurnNets`; `via_actor!`).
macro_rules! forward_policy_nets {
    ($ty:ty, $reach:ident) => {
        impl $crate::trainer::seam::PolicyNets for $ty {
            async fn sample(&self, y: Vec<f32>, s: &[f32]) -> Result<Vec<f32>, $crate::device::DeviceError> {
                $reach!(self, n => n.sample(y, s).await)
            }
            async fn actor_step(
                &mut self,
                s: &[f32],
                xt: &[f32],
                t: &[f32],
                target: &[f32],
                lr: f64,
            ) -> Result<$crate::trainer::seam::StepLoss, $crate::device::DeviceError> {
                $reach!(self, n => n.actor_step(s, xt, t, target, lr).await)
            }
            fn commit_actor(&mut self) {
                $reach!(self, n => n.commit_actor())
            }
            async fn export_actor(
                &self,
                prefix: &str,
                out: &mut Vec<$crate::trainer::weights::NamedTensor>,
            ) -> Result<(), $crate::device::DeviceError> {
                $reach!(self, n => n.export_actor(prefix, out).await)
            }
            fn import_actor(&mut self, prefix: &str, store: &mut $crate::trainer::weights::TensorStore) -> Result<(), String> {
                $reach!(self, n => n.import_actor(prefix, store))
            }
            fn policy_module(&self) -> $crate::nets::Policy {
                $reach!(self, n => n.policy_module())
            }
        }
    };
}

#[cfg(feature = "webgpu")]
pub mod batch;
pub mod burn;
pub mod host;
#[cfg(test)]
mod tests;

use crate::device::{BackendKind, ComputeDevice, DeviceError};
use crate::nets::critic::CriticConfig;
use crate::nets::{OdeConfig, PolicyConfig};
use crate::replay::Batch;
use crate::rfm::boltzmann::boltzmann_latent_log_prob_grad;
use crate::rfm::estimators::{Estimator, Proposal};
use crate::rfm::path::Path;
use crate::rfm::posterior::{PosteriorError, PosteriorSpec, Regression, posterior_targets};
use crate::rng::Rng;

use super::weights::{NamedTensor, TensorStore};

/// Loss and global gradient norm (before clipping) of one staged step; the caller commits only
/// when both are finite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLoss {
    pub loss: f32,
    pub norm: f32,
}

/// Shapes and fixed settings of the networks.
#[derive(Clone, Debug)]
pub struct NetsSpec {
    pub policy: PolicyConfig,
    /// `None` for a policy without a critic (sampler mode).
    pub critic: Option<CriticConfig>,
    pub ode: OdeConfig,
    /// Temperature fed to the policy's λ embedding.
    pub lambda: f32,
    /// Global-norm clip of every gradient step (`f32::INFINITY`: off).
    pub grad_clip: f32,
}

/// The policy's part of the seam.
#[allow(async_fn_in_trait)]
pub trait PolicyNets {
    /// `y(t_end)` of the sampling ODE from `y` (`y0`, usually `N(0, I)` draws) with states `s`
    /// (empty when the policy has none).
    async fn sample(&self, y: Vec<f32>, s: &[f32]) -> Result<Vec<f32>, DeviceError>;

    /// Staged actor step: `mean((net(t, xt, s) − target)²)`, global-norm clip, Adam at `lr`.
    async fn actor_step(
        &mut self,
        s: &[f32],
        xt: &[f32],
        t: &[f32],
        target: &[f32],
        lr: f64,
    ) -> Result<StepLoss, DeviceError>;

    /// Make the staged actor step the policy (no-op without one).
    fn commit_actor(&mut self);

    /// The committed policy's tensors, named `prefix.<path>`.
    async fn export_actor(
        &self,
        prefix: &str,
        out: &mut Vec<NamedTensor>,
    ) -> Result<(), DeviceError>;

    /// Replace the policy's weights from `store` (all or nothing); the optimiser restarts.
    fn import_actor(&mut self, prefix: &str, store: &mut TensorStore) -> Result<(), String>;

    /// A burn copy of the committed policy on the plain device (for path views).
    fn policy_module(&self) -> crate::nets::Policy;
}

/// The RL agent's part of the seam (on top of the policy's).
#[allow(async_fn_in_trait)]
pub trait RfmNets: PolicyNets {
    /// [`PolicyNets::sample`] and `min(Q1, Q2)(s, tanh y)` of every row by the committed
    /// online critic: `(y [rows·act], q [rows])`.
    async fn sample_scored(
        &mut self,
        y: Vec<f32>,
        s: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>), DeviceError>;

    /// `min(Q1', Q2')(s, a)` of the target critic.
    async fn target_q(&mut self, s: &[f32], a: &[f32]) -> Result<Vec<f32>, DeviceError>;

    /// `min(Q1, Q2)(s, a)` of the committed online critic (views).
    async fn q_min(&self, s: &[f32], a: &[f32]) -> Result<Vec<f32>, DeviceError>;

    /// `(min(Q1, Q2), ∇ₐ min(Q1, Q2))` of the committed critic (`staged = false`, views) or of
    /// the critic staged by [`critic_step`](Self::critic_step) (`staged = true`).
    async fn q_and_grad(
        &self,
        s: &[f32],
        a: &[f32],
        staged: bool,
    ) -> Result<(Vec<f32>, Vec<f32>), DeviceError>;

    /// Staged critic step: `mean((Q1 − y)²) + mean((Q2 − y)²)` at `(s, a)`, clip, Adam at `lr`.
    async fn critic_step(
        &mut self,
        s: &[f32],
        a: &[f32],
        y: &[f32],
        lr: f64,
    ) -> Result<StepLoss, DeviceError>;

    /// The staged critic step on the TD target `r + γ (1 − done) min(Q1', Q2')(s', a')` of the
    /// target critic: [`target_q`](Self::target_q), `trainer::td_target`, then
    /// [`critic_step`](Self::critic_step); its loss and norm come from
    /// [`staged_critic_loss`](Self::staged_critic_loss). The burn implementation keeps the
    /// target on the device and reads nothing back here (on WebGPU its loss and norm stay on
    /// the device until asked for). `next_act` are the actions `a'` at `batch.next_obs`.
    async fn td_critic_step(
        &mut self,
        batch: &Batch,
        next_act: &[f32],
        gamma: f32,
        lr: f64,
    ) -> Result<(), DeviceError> {
        let q_next = self.target_q(&batch.next_obs, next_act).await?;
        let y = crate::trainer::td_target(&batch.rew, &batch.done, &q_next, gamma);
        self.critic_step(&batch.obs, &batch.act, &y, lr).await?;
        Ok(())
    }

    /// The loss and norm of the critic step staged by [`td_critic_step`](Self::td_critic_step)
    /// (read back now on WebGPU, once).
    async fn staged_critic_loss(&self) -> Result<StepLoss, DeviceError>;

    /// Steps (1)–(5) of the RFM update (`trainer::rfm`) on `batch`, staged: the on-policy
    /// latents of the states and next states (`spec.candidates` policy samples each, one
    /// picked by softmax(`min(Q1, Q2)/λ`)), the critic step on the TD target of `a' = tanh(y1')`,
    /// the points `x_t` on the path from the picked `y1` at `t ~ U[0.01, 0.99]`, their
    /// posterior targets from `spec.posterior.k` candidates scored by the staged critic, and
    /// the actor step toward them. Random draws, in order: the sampler's `y0`, one uniform
    /// per picked state, `t`, the path's noise, the candidates' normals. The default composes
    /// the seam's steps on the host pipeline ([`host_rfm_update`]); on WebGPU the burn
    /// implementation runs it all on the device from the same draws and reads back **once**.
    /// Nothing is committed; the caller checks what comes back.
    async fn rfm_update(
        &mut self,
        batch: &Batch,
        spec: &UpdateSpec<'_>,
        rng: &mut Rng,
    ) -> Result<UpdateOut, DeviceError> {
        host_rfm_update(self, batch, spec, rng).await
    }

    /// Commit the staged critic and actor steps, then `target ← τ·online + (1 − τ)·target`.
    fn commit(&mut self, tau: f32);

    /// Every tensor: `actor.*`, `critic.*`, `target.*`.
    async fn export(&self, out: &mut Vec<NamedTensor>) -> Result<(), DeviceError>;

    /// Replace every network's weights from `store`; optimisers restart.
    fn import(&mut self, store: &mut TensorStore) -> Result<(), String>;
}

/// Which implementation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    /// `nets::host` kernels (the CPU).
    Host,
    /// burn modules on the device (WebGPU; also runs on flex, which the parity tests use).
    Burn,
}

impl Impl {
    /// The implementation for `device`: the only place the device kind picks the networks.
    pub fn for_device(device: &ComputeDevice) -> Self {
        match device.kind() {
            BackendKind::Cpu => Impl::Host,
            BackendKind::Webgpu => Impl::Burn,
        }
    }
}

/// The policy of sampler mode, on the implementation chosen by [`Policy::new`].
pub enum Policy {
    Host(Box<host::HostActor>),
    Burn(Box<burn::BurnActor>),
}

impl Policy {
    /// Weights from `rng` (identical for both implementations), on the implementation for
    /// `device` unless `which` says otherwise.
    pub fn new(spec: &NetsSpec, device: &ComputeDevice, which: Impl, rng: &mut Rng) -> Self {
        let weights = spec.policy.init_host(rng);
        match which {
            Impl::Host => Self::Host(Box::new(host::HostActor::new(weights, spec, device))),
            Impl::Burn => Self::Burn(Box::new(burn::BurnActor::new(&weights, spec, device))),
        }
    }
}

forward_policy_nets!(Policy, dispatch);

/// The RL agent's networks, on the implementation chosen by [`Nets::new`].
pub enum Nets {
    Host(Box<host::HostNets>),
    Burn(Box<burn::BurnNets>),
}

impl Nets {
    /// Actor then critic weights from `rng` (identical for both implementations; the target
    /// starts as a copy of the critic), on `which` implementation.
    pub fn new(spec: &NetsSpec, device: &ComputeDevice, which: Impl, rng: &mut Rng) -> Self {
        let actor = spec.policy.init_host(rng);
        let critic_cfg = spec.critic.as_ref().expect("RL networks need a critic");
        let critic = critic_cfg.init_host(rng);
        match which {
            Impl::Host => Self::Host(Box::new(host::HostNets::new(actor, critic, spec, device))),
            Impl::Burn => Self::Burn(Box::new(burn::BurnNets::new(&actor, &critic, spec, device))),
        }
    }
}

forward_policy_nets!(Nets, dispatch);

impl Nets {
    /// Run this agent's fused updates in the same kernels as the other seeds' of `gather`
    /// (`index`: this seed's); nothing changes off WebGPU.
    #[cfg(feature = "webgpu")]
    pub fn join_gather(&mut self, gather: batch::SeedGather, index: usize) {
        if let Self::Burn(n) = self {
            n.join_gather(gather, index);
        }
    }
}

impl RfmNets for Nets {
    async fn sample_scored(
        &mut self,
        y: Vec<f32>,
        s: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>), DeviceError> {
        dispatch!(self, n => n.sample_scored(y, s).await)
    }
    async fn target_q(&mut self, s: &[f32], a: &[f32]) -> Result<Vec<f32>, DeviceError> {
        dispatch!(self, n => n.target_q(s, a).await)
    }
    async fn q_min(&self, s: &[f32], a: &[f32]) -> Result<Vec<f32>, DeviceError> {
        dispatch!(self, n => n.q_min(s, a).await)
    }
    async fn q_and_grad(
        &self,
        s: &[f32],
        a: &[f32],
        staged: bool,
    ) -> Result<(Vec<f32>, Vec<f32>), DeviceError> {
        dispatch!(self, n => n.q_and_grad(s, a, staged).await)
    }
    async fn critic_step(
        &mut self,
        s: &[f32],
        a: &[f32],
        y: &[f32],
        lr: f64,
    ) -> Result<StepLoss, DeviceError> {
        dispatch!(self, n => n.critic_step(s, a, y, lr).await)
    }
    async fn td_critic_step(
        &mut self,
        batch: &Batch,
        next_act: &[f32],
        gamma: f32,
        lr: f64,
    ) -> Result<(), DeviceError> {
        dispatch!(self, n => n.td_critic_step(batch, next_act, gamma, lr).await)
    }
    async fn staged_critic_loss(&self) -> Result<StepLoss, DeviceError> {
        dispatch!(self, n => n.staged_critic_loss().await)
    }
    async fn rfm_update(
        &mut self,
        batch: &Batch,
        spec: &UpdateSpec<'_>,
        rng: &mut Rng,
    ) -> Result<UpdateOut, DeviceError> {
        dispatch!(self, n => n.rfm_update(batch, spec, rng).await)
    }
    fn commit(&mut self, tau: f32) {
        dispatch!(self, n => n.commit(tau))
    }
    async fn export(&self, out: &mut Vec<NamedTensor>) -> Result<(), DeviceError> {
        dispatch!(self, n => n.export(out).await)
    }
    fn import(&mut self, store: &mut TensorStore) -> Result<(), String> {
        dispatch!(self, n => n.import(store))
    }
}

/// The settings of one [`RfmNets::rfm_update`].
#[derive(Clone, Copy, Debug)]
pub struct UpdateSpec<'a> {
    /// Policy samples per state for the on-policy pick (≥ 1).
    pub candidates: usize,
    pub gamma: f32,
    pub critic_lr: f64,
    pub actor_lr: f64,
    pub posterior: PosteriorStep<'a>,
}

/// What one [`RfmNets::rfm_update`] staged: the critic step's loss and norm, and the
/// posterior and actor step's outcome (checked by the caller in that order).
#[derive(Debug)]
pub struct UpdateOut {
    pub critic: StepLoss,
    pub posterior: Result<PosteriorStepOut, PosteriorStepError>,
}

/// The settings of the posterior of [`RfmNets::rfm_update`] (and [`host_posterior_actor_step`]).
#[derive(Clone, Copy, Debug)]
pub struct PosteriorStep<'a> {
    pub path: &'a Path,
    pub proposal: &'a Proposal,
    pub estimator: &'a Estimator,
    /// Candidates per point (≥ 1).
    pub k: usize,
    pub regression: Regression,
    /// The Boltzmann target's temperature: `exp(Q/λ)`.
    pub lambda: f32,
}

/// What the posterior and actor step of [`RfmNets::rfm_update`] staged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PosteriorStepOut {
    /// The staged actor step's loss and norm (the caller checks them).
    pub actor: StepLoss,
    /// Mean effective sample size of the posterior's weights over the points.
    pub mean_ess: f32,
}

/// Why the posterior and actor step of [`RfmNets::rfm_update`] staged no usable actor step.
#[derive(Debug, thiserror::Error)]
pub enum PosteriorStepError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A `Q` at the posterior's candidates is not finite (the first one).
    #[error("Q at the posterior samples is {0}")]
    NonFiniteQ(f32),
    /// Shapes, the estimator's or proposal's parameters, a non-finite density value.
    #[error("{0}")]
    Estimator(String),
    /// The regression target is not finite (the first value).
    #[error("regression target is {0}")]
    NonFiniteTarget(f32),
}

/// For `n` states `s` (`[n·obs]`): `c` policy samples each from `y0 ~ N(0, I)` (drawn here,
/// `[n·c, act]`, row `i·c + j` is candidate `j` of state `i`), scored by
/// [`RfmNets::sample_scored`], one picked per state (`trainer::pick_candidates`: softmax of
/// `Q/λ` with one uniform per state when `explore`, else argmax). Returns the picked latents
/// `y` (`[n·act]`).
#[allow(clippy::too_many_arguments)]
pub async fn sample_picked<N: RfmNets + ?Sized>(
    nets: &mut N,
    s: &[f32],
    n: usize,
    (o, d): (usize, usize),
    c: usize,
    lambda: f32,
    explore: bool,
    rng: &mut Rng,
) -> Result<Vec<f32>, DeviceError> {
    let y0 = crate::rng::normals(rng, n * c * d);
    let s = crate::trainer::repeat_rows(s, o, c);
    let (y, q) = nets.sample_scored(y0, &s).await?;
    let picks = crate::trainer::pick_candidates(&q, c, lambda, explore, rng);
    let mut out = Vec::with_capacity(n * d);
    for (i, p) in picks.into_iter().enumerate() {
        let row = i * c + p;
        out.extend_from_slice(&y[row * d..(row + 1) * d]);
    }
    Ok(out)
}

/// [`RfmNets::rfm_update`] composed of the seam's steps on the host pipeline:
/// [`sample_picked`] for the states and next states in one call, [`RfmNets::td_critic_step`],
/// `x_t` by `rfm::posterior::interpolate`, [`host_posterior_actor_step`], then
/// [`RfmNets::staged_critic_loss`].
pub async fn host_rfm_update<N: RfmNets + ?Sized>(
    nets: &mut N,
    batch: &Batch,
    spec: &UpdateSpec<'_>,
    rng: &mut Rng,
) -> Result<UpdateOut, DeviceError> {
    let n = batch.n;
    let d = batch.act.len() / n.max(1);
    let o = batch.obs.len() / n.max(1);
    let post = &spec.posterior;
    let both = [batch.obs.as_slice(), batch.next_obs.as_slice()].concat();
    let mut y1 = sample_picked(
        nets,
        &both,
        2 * n,
        (o, d),
        spec.candidates,
        post.lambda,
        true,
        rng,
    )
    .await?;
    let a_next: Vec<f32> = y1.split_off(n * d).into_iter().map(f32::tanh).collect();
    nets.td_critic_step(batch, &a_next, spec.gamma, spec.critic_lr)
        .await?;
    let t = posterior_times(rng, n);
    let y0 = crate::rng::normals(rng, n * d);
    let xt = crate::rfm::posterior::interpolate(post.path, &y1, &y0, &t, d);
    let posterior =
        host_posterior_actor_step(nets, &batch.obs, &xt, &t, post, spec.actor_lr, rng).await;
    let critic = nets.staged_critic_loss().await?;
    Ok(UpdateOut { critic, posterior })
}

/// The update's times of the points `x_t`, `t ~ U[0.01, 0.99]` (`[n]`).
pub(crate) fn posterior_times(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| crate::rng::uniform(rng, 0.01, 0.99))
        .collect()
}

/// Steps (4) and (5) on the host pipeline: the posterior targets of the points `xt`
/// (`[n·act]`) at times `t` (`[n]`) by `posterior_targets` from `spec.k` candidates each
/// (drawn from `rng`) with the tanh-latent Boltzmann density of the staged critic
/// ([`RfmNets::q_and_grad`]), then the staged actor step toward them at `lr` (states `obs`).
pub async fn host_posterior_actor_step<N: RfmNets + ?Sized>(
    nets: &mut N,
    obs: &[f32],
    xt: &[f32],
    t: &[f32],
    spec: &PosteriorStep<'_>,
    lr: f64,
    rng: &mut Rng,
) -> Result<PosteriorStepOut, PosteriorStepError> {
    let d = xt.len() / t.len().max(1);
    let o = obs.len() / t.len().max(1);
    let s_k = crate::trainer::repeat_rows(obs, o, spec.k);
    let post_spec = PosteriorSpec {
        path: spec.path,
        proposal: spec.proposal,
        estimators: std::slice::from_ref(spec.estimator),
        k: spec.k,
        regression: spec.regression,
    };
    let shared = &*nets;
    let lambda = spec.lambda;
    let density = async |x1: &[f32]| {
        let a: Vec<f32> = x1.iter().map(|u| u.tanh()).collect();
        let (q, gq) = shared.q_and_grad(&s_k, &a, true).await?;
        if let Some(&value) = q.iter().find(|v| !v.is_finite()) {
            return Err(PosteriorStepError::NonFiniteQ(value));
        }
        let (mut logp, mut grad) = (vec![0.0f32; q.len()], vec![0.0f32; gq.len()]);
        boltzmann_latent_log_prob_grad(&q, &gq, x1, lambda, &mut logp, &mut grad)
            .map_err(|e| PosteriorStepError::Estimator(e.to_string()))?;
        Ok((logp, grad))
    };
    let post = posterior_targets(&post_spec, xt, t, d, rng, density)
        .await
        .map_err(|e| match e {
            PosteriorError::Density(e) => e,
            PosteriorError::Estimator(e) => PosteriorStepError::Estimator(e.to_string()),
            PosteriorError::NonFiniteTarget { value, .. } => {
                PosteriorStepError::NonFiniteTarget(value)
            }
        })?
        .pop()
        .expect("one estimator, one target");
    let actor = nets.actor_step(obs, xt, t, &post.target, lr).await?;
    Ok(PosteriorStepOut {
        actor,
        mean_ess: post.mean_ess(),
    })
}

/// What a caller asks of a critic step's loss before any was staged (a bug in the caller).
fn no_staged_critic_step() -> DeviceError {
    DeviceError::Readback("no critic step is staged".into())
}
