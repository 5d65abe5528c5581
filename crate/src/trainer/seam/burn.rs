//! The seam on burn modules (the WebGPU path; it also runs on flex for the parity tests):
//! autodiff for the steps (on WebGPU the hand-written gradient kernels of
//! `nets::fused::{critic_grads, actor_grads}`), burn's Adam (on WebGPU
//! `nets::fused::FusedAdam`), the global-norm clip
//! (`loss_norm_and_flat_grads`; on WebGPU the factor is computed on the device and Adam reads
//! it; a whole RFM update, `rfm_update`, runs on the device from draws made ahead and reads
//! back once),
//! the batched [`crate::nets::Policy::sample`] and the critic's explicit `∇ₐQ`. Every readback
//! is async. Steps stage the stepped module and optimiser; `commit` swaps them in.

use std::cell::RefCell;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};

#[cfg(feature = "webgpu")]
use super::batch;
use super::{NetsSpec, PolicyNets, RfmNets, StepLoss, UpdateOut, UpdateSpec};
use crate::device::{ComputeDevice, DeviceError, read_f32, read_f32_pair};
use crate::nets::critic::{Critic, polyak};
#[cfg(feature = "webgpu")]
use crate::nets::fused;
use crate::nets::host::optim::clip_scale;
use crate::nets::host::{HostCritic, HostPolicy, load};
use crate::nets::{OdeConfig, Policy, mse, squash};
use crate::replay::Batch;
#[cfg(feature = "webgpu")]
use crate::rfm::posterior::check_candidates;
use crate::rng::Rng;
use crate::trainer::weights::{NamedTensor, TensorStore, export_module, import_module};
use crate::trainer::{loss_and_global_norm, scale_grads, tensor2};
use burn::tensor::Tensor;

/// The optimiser of a burn-seam module: burn's Adam, or on WebGPU the fused one
/// ([`fused::FusedAdam`]: one dispatch per module over packed buffers, the same arithmetic).
#[derive(Clone)]
enum Adam {
    Burn(ModuleOptimizer),
    #[cfg(feature = "webgpu")]
    Fused(fused::FusedAdam),
}

impl Adam {
    fn new(device: &ComputeDevice) -> Self {
        #[cfg(feature = "webgpu")]
        if device.runs_custom_kernels() {
            return Adam::Fused(fused::FusedAdam::default());
        }
        let _ = device;
        Adam::Burn(AdamConfig::new().init())
    }

    /// Burn's Adam on `grads` multiplied by `scale` (the clip's factor). On WebGPU the seam's
    /// steps compute their own gradients and step through [`Adam::fused`] instead.
    fn step<M: burn::module::Module>(
        &mut self,
        lr: f64,
        module: M,
        mut grads: GradientsParams,
        scale: f32,
    ) -> M {
        match self {
            #[cfg(feature = "webgpu")]
            Adam::Fused(_) => {
                unreachable!("WebGPU steps go through fused_critic_step / fused_actor_step")
            }
            Adam::Burn(o) => {
                if scale != 1.0 {
                    scale_grads(&mut grads, &module, scale);
                }
                o.step(lr, module, grads)
            }
        }
    }

    /// The fused optimiser (`Adam::new` on a WebGPU device).
    #[cfg(feature = "webgpu")]
    fn fused(&mut self) -> &mut fused::FusedAdam {
        match self {
            Adam::Fused(adam) => adam,
            Adam::Burn(_) => unreachable!("a WebGPU device steps with the fused Adam (Adam::new)"),
        }
    }

    /// The fused optimiser itself (`Adam::new` on a WebGPU device).
    #[cfg(feature = "webgpu")]
    fn into_fused(self) -> fused::FusedAdam {
        match self {
            Adam::Fused(adam) => adam,
            Adam::Burn(_) => unreachable!("a WebGPU device steps with the fused Adam (Adam::new)"),
        }
    }

    /// A staged step of `module` down `loss` (a one-element tensor on the autodiff device):
    /// backward, the loss and the global gradient norm (one readback), then Adam at `lr` on a
    /// copy of this optimiser with the gradients clipped at `clip` (`clip_scale`). Returns the
    /// stepped module, that optimiser and the loss with the norm before clipping; `self` and
    /// `module` are untouched.
    async fn staged_step<M: burn::module::Module>(
        &self,
        module: &M,
        loss: Tensor<1>,
        clip: f32,
        lr: f64,
    ) -> Result<(M, Adam, StepLoss), DeviceError> {
        let value = loss.clone().inner();
        let grads = GradientsParams::from_grads(loss.backward(), module);
        let (loss, norm) = loss_and_global_norm(&grads, module, value).await?;
        let mut opt = self.clone();
        let stepped = opt.step(lr, module.clone(), grads, clip_scale(norm, clip));
        Ok((stepped, opt, StepLoss { loss, norm }))
    }
}

/// The policy on the autodiff device and its optimiser.
pub struct BurnActor {
    policy: Policy,
    opt: Adam,
    staged: Option<(Policy, Adam)>,
    lambda: f32,
    ode: OdeConfig,
    grad_clip: f32,
    device: ComputeDevice,
    /// The committed policy prepared for the fused sampler (WebGPU), dropped at each change.
    #[cfg(feature = "webgpu")]
    fused: std::cell::RefCell<Option<fused::FusedPolicy>>,
}

impl BurnActor {
    pub fn new(weights: &HostPolicy, spec: &NetsSpec, device: &ComputeDevice) -> Self {
        Self {
            policy: load::policy_module(weights, &device.autodiff()),
            opt: Adam::new(device),
            staged: None,
            lambda: spec.lambda,
            ode: spec.ode.clone(),
            grad_clip: spec.grad_clip,
            device: device.clone(),
            #[cfg(feature = "webgpu")]
            fused: Default::default(),
        }
    }

    /// `f` on the fused sampler's copy of the committed policy, prepared on first use: its
    /// parameters as `FusedAdam` left them packed (no dispatch; packed here before the first
    /// step), and the conditioning's contribution (one matmul).
    #[cfg(feature = "webgpu")]
    fn with_fused<T>(&self, f: impl FnOnce(&fused::FusedPolicy) -> T) -> T {
        let mut cache = self.fused.borrow_mut();
        let policy = cache.get_or_insert_with(|| {
            let packed = match &self.opt {
                Adam::Fused(adam) => adam.params_of(&self.policy),
                Adam::Burn(_) => unreachable!("a WebGPU device steps with the fused Adam"),
            };
            fused::FusedPolicy::new(
                &self.policy.valid(),
                packed,
                self.lambda,
                &self.ode,
                self.device.device(),
            )
        });
        f(policy)
    }

    /// The committed policy changed: the fused sampler's copy is stale.
    fn policy_changed(&mut self) {
        #[cfg(feature = "webgpu")]
        self.fused.get_mut().take();
    }

    /// Loaded weights become the policy: a fresh optimiser, nothing staged.
    fn replace_policy(&mut self, policy: Policy) {
        self.policy = policy;
        self.opt = Adam::new(&self.device);
        self.staged = None;
        self.policy_changed();
    }

    /// The staged actor step on WebGPU: the gradients from `fused::actor_grads` (three
    /// dispatches, no autodiff) at the committed parameters as `FusedAdam` keeps them packed,
    /// the step's stats (loss, norm, clip factor) on the device, `FusedAdam` on the packed
    /// gradients. `rows`: the first layer's input rows `(s, x_t)` and `target`, uploads or
    /// where the fused update computed them (`fused::pick`, `fused::posterior`); `t`: the
    /// rows' times. Reads nothing back: returns the stats ([`fused::STATS`] floats) still on
    /// the device.
    #[cfg(feature = "webgpu")]
    fn fused_actor_stage(
        &mut self,
        rows: Tensor<1>,
        t: &[f32],
        target: Tensor<1>,
        lr: f64,
    ) -> Tensor<1> {
        let d = self.dims().1;
        let mut opt = self.opt.clone();
        let adam = opt.fused();
        let cfg = &self.policy.config;
        let c = cfg.conditioning_rows(t, self.lambda);
        let packed = adam.params_of(&self.policy);
        let dev = self.device.device();
        let (grads, sums) =
            fused::actor_grads(cfg, packed, rows, c, target, fused::SeedRows::ONE, dev);
        // The clip's factor on the device, so Adam is queued before any readback.
        let stats = fused::step_stats(sums, t.len() * d, self.grad_clip);
        let (policy, _) = adam.step(lr, self.policy.clone(), grads, stats.clone());
        self.staged = Some((policy, opt));
        stats
    }

    /// `(rows, cols)` of a policy input.
    fn dims(&self) -> (usize, usize) {
        (self.policy.config.state_dim, self.policy.config.act_dim)
    }
}

impl PolicyNets for BurnActor {
    async fn sample(&self, y: Vec<f32>, s: &[f32]) -> Result<Vec<f32>, DeviceError> {
        let (o, d) = self.dims();
        let rows = y.len() / d;
        let dev = self.device.device();
        #[cfg(feature = "webgpu")]
        if self.device.runs_custom_kernels() {
            let s = (o > 0).then(|| s.to_vec());
            let out = self
                .with_fused(|policy| fused::sample(policy, None, y, s, fused::SeedRows::ONE, dev));
            return read_f32(out).await;
        }
        let s = (o > 0).then(|| tensor2(s.to_vec(), rows, o, dev));
        let out = self
            .policy
            .sample(tensor2(y, rows, d, dev), s, self.lambda, &self.ode, false);
        read_f32(out.y).await
    }

    async fn actor_step(
        &mut self,
        s: &[f32],
        xt: &[f32],
        t: &[f32],
        target: &[f32],
        lr: f64,
    ) -> Result<StepLoss, DeviceError> {
        let (o, d) = self.dims();
        let n = t.len();
        #[cfg(feature = "webgpu")]
        if self.device.runs_custom_kernels() {
            let dev = self.device.device();
            // The rows `(s, x_t)`, the first layer's input.
            let rows = if o == 0 {
                xt.to_vec()
            } else {
                let mut x = Vec::with_capacity(n * (o + d));
                for (si, yi) in s.chunks(o).zip(xt.chunks(d)) {
                    x.extend_from_slice(si);
                    x.extend_from_slice(yi);
                }
                x
            };
            let (rows, target) = (
                fused::upload(rows, dev),
                fused::upload(target.to_vec(), dev),
            );
            let stats = self.fused_actor_stage(rows, t, target, lr);
            return step_loss(&read_f32(stats).await?);
        }
        let ad = self.device.autodiff();
        let s = (o > 0).then(|| tensor2(s.to_vec(), n, o, &ad));
        let cond = self.policy.conditioning(t, self.lambda, &ad);
        let pred = self
            .policy
            .forward(tensor2(xt.to_vec(), n, d, &ad), s, cond);
        let loss = mse(pred, tensor2(target.to_vec(), n, d, &ad));
        let (policy, opt, step) = self
            .opt
            .staged_step(&self.policy, loss, self.grad_clip, lr)
            .await?;
        self.staged = Some((policy, opt));
        Ok(step)
    }

    fn commit_actor(&mut self) {
        if let Some((p, o)) = self.staged.take() {
            self.policy = p;
            self.opt = o;
            self.policy_changed();
        }
    }

    async fn export_actor(
        &self,
        prefix: &str,
        out: &mut Vec<NamedTensor>,
    ) -> Result<(), DeviceError> {
        export_module(prefix, &self.policy, out).await
    }

    fn import_actor(&mut self, prefix: &str, store: &mut TensorStore) -> Result<(), String> {
        let policy = import_module(prefix, self.policy.clone(), store)?;
        self.replace_policy(policy);
        Ok(())
    }

    fn policy_module(&self) -> Policy {
        self.policy.valid()
    }
}

/// A staged critic step's loss and norm: read, or (WebGPU) its stats still on the device.
#[derive(Clone)]
enum CriticStats {
    Known(StepLoss),
    /// Boxed: a burn tensor is large.
    #[cfg(feature = "webgpu")]
    OnDevice(Box<Tensor<1>>),
}

/// Loss and norm from a fused step's stats read back (`fused::step_stats`).
#[cfg(feature = "webgpu")]
fn step_loss(stats: &[f32]) -> Result<StepLoss, DeviceError> {
    let (loss, norm) = fused::stats_loss_and_norm(stats).map_err(DeviceError::Readback)?;
    Ok(StepLoss { loss, norm })
}

/// The RL networks as burn modules: actor and online critic on the autodiff device, the
/// Polyak target on the plain device.
pub struct BurnNets {
    actor: BurnActor,
    critic: Critic,
    critic_opt: Adam,
    staged: Option<(Critic, Adam)>,
    /// The staged critic step's loss and norm, read or still on the device.
    critic_stats: RefCell<Option<CriticStats>>,
    target: Critic,
    device: ComputeDevice,
    /// The committed critic packed for the fused sampler (WebGPU), dropped at each commit.
    #[cfg(feature = "webgpu")]
    fused_critic: Option<fused::FusedCritic>,
    /// The staged critic packed as `FusedAdam` left it (WebGPU): the sampler's at its commit.
    #[cfg(feature = "webgpu")]
    staged_fused: Option<fused::FusedCritic>,
    /// The Polyak target packed in that layout (WebGPU): averaged at each commit, and then the
    /// target (`target` is stale; `target_module` unpacks it).
    #[cfg(feature = "webgpu")]
    target_packed: Option<Tensor<1>>,
    /// The other seeds this one's fused updates run with, and its index among them.
    #[cfg(feature = "webgpu")]
    gather: Option<(batch::SeedGather, usize)>,
}

impl BurnNets {
    pub fn new(
        actor: &HostPolicy,
        critic: &HostCritic,
        spec: &NetsSpec,
        device: &ComputeDevice,
    ) -> Self {
        let cfg = spec.critic.as_ref().expect("RL networks need a critic");
        Self {
            actor: BurnActor::new(actor, spec, device),
            critic: load::critic_module(critic, cfg, &device.autodiff()),
            critic_opt: Adam::new(device),
            staged: None,
            critic_stats: RefCell::new(None),
            target: load::critic_module(critic, cfg, device.device()),
            device: device.clone(),
            #[cfg(feature = "webgpu")]
            fused_critic: None,
            #[cfg(feature = "webgpu")]
            staged_fused: None,
            #[cfg(feature = "webgpu")]
            target_packed: None,
            #[cfg(feature = "webgpu")]
            gather: None,
        }
    }

    /// The staged critic step toward `y` (`[n, 1]` on the autodiff device) through burn's
    /// autodiff (off WebGPU: `fused_critic_step` there); its loss and norm are kept for
    /// `staged_critic_loss`.
    async fn critic_step_to(
        &mut self,
        s: &[f32],
        a: &[f32],
        y: Tensor<2>,
        lr: f64,
    ) -> Result<StepLoss, DeviceError> {
        let (o, d) = (self.critic.config.obs_dim, self.critic.config.act_dim);
        let n = y.dims()[0];
        let ad = self.device.autodiff();
        let (s, a) = (
            tensor2(s.to_vec(), n, o, &ad),
            tensor2(a.to_vec(), n, d, &ad),
        );
        let (q1, q2) = self.critic.forward(s, a);
        let loss = mse(q1, y.clone()) + mse(q2, y);
        let clip = self.actor.grad_clip;
        let (critic, opt, step) = self
            .critic_opt
            .staged_step(&self.critic, loss, clip, lr)
            .await?;
        self.staged = Some((critic, opt));
        *self.critic_stats.get_mut() = Some(CriticStats::Known(step));
        Ok(step)
    }

    /// The staged critic step toward `y` (`[n, 1]` on the plain device) on WebGPU: the
    /// gradients from `fused::critic_grads` (three dispatches, no autodiff), the step's stats
    /// (loss, norm, clip factor) on the device, `FusedAdam` on the packed gradients. Reads
    /// nothing back: the stats stay on the device for `staged_critic_loss` (or the readback
    /// at the end of `fused_rfm_update`).
    #[cfg(feature = "webgpu")]
    fn fused_critic_step(&mut self, s: &[f32], a: &[f32], y: Tensor<2>, lr: f64) {
        let cfg = self.critic.config.clone();
        let rows = y.dims()[0];
        let packed_now;
        let online = match &self.fused_critic {
            Some(c) => c,
            None => {
                packed_now = fused::FusedCritic::new(&self.critic.valid());
                &packed_now
            }
        };
        let dev = self.device.device();
        let (grads, sums) = fused::critic_grads(
            online,
            s.to_vec(),
            a.to_vec(),
            y,
            (cfg.obs_dim, cfg.act_dim),
            fused::SeedRows::ONE,
            dev,
        );
        let stats = fused::step_stats(sums, rows, self.actor.grad_clip);
        let mut opt = self.critic_opt.clone();
        let (critic, packed) = opt
            .fused()
            .step(lr, self.critic.clone(), grads, stats.clone());
        self.staged_fused = Some(fused::FusedCritic::from_packed(packed, &cfg));
        self.staged = Some((critic, opt));
        *self.critic_stats.get_mut() = Some(CriticStats::OnDevice(Box::new(stats)));
    }

    /// The staged critic step on the TD target `r + γ (1 − done) min(Q1', Q2')(s', a')` on
    /// WebGPU: the target critic and the TD target in one dispatch (`fused::q_min`), then
    /// [`fused_critic_step`](Self::fused_critic_step); `a_next` (`[n·act]`) on the device.
    /// Nothing read back.
    #[cfg(feature = "webgpu")]
    fn fused_td_critic_step(&mut self, batch: &Batch, a_next: Tensor<1>, gamma: f32, lr: f64) {
        let (o, d) = (self.target.config.obs_dim, self.target.config.act_dim);
        let not_done: Vec<f32> = batch.done.iter().map(|x| gamma * (1.0 - x)).collect();
        let target = self.packed_target();
        let td = Some((batch.rew.clone(), not_done));
        let dev = self.device.device();
        let y = fused::q_min(
            &target,
            batch.next_obs.clone(),
            a_next,
            td,
            (o, d),
            fused::SeedRows::ONE,
            dev,
        );
        self.fused_critic_step(&batch.obs, &batch.act, y, lr);
    }

    /// [`RfmNets::rfm_update`] on WebGPU, every step on the device from the host pipeline's
    /// draws (drawn ahead, in its order; [`batch::run_update_jobs`]): the scored sampling of
    /// the states and next states, the pick, `x_t` and the actor's rows, the TD target and the
    /// critic step, the candidates, their `Q` and `∇ₐQ` by the staged critic, the posterior
    /// and the actor step on it, then **one readback**: both steps' stats and the posterior.
    /// With a [`batch::SeedGather`] in a round, in the same kernels as the other seeds'.
    #[cfg(feature = "webgpu")]
    async fn fused_rfm_update(
        &mut self,
        batch: &Batch,
        spec: &UpdateSpec<'_>,
        rng: &mut Rng,
    ) -> Result<UpdateOut, DeviceError> {
        let job = self.update_job(batch, spec, rng);
        let policy = self.actor.policy.config.clone();
        let shapes = batch::Shapes {
            policy: &policy,
            lambda: self.actor.lambda,
            grad_clip: self.actor.grad_clip,
            obs: self.critic.config.obs_dim,
            act: self.critic.config.act_dim,
        };
        let out = match &self.gather {
            Some((g, i)) if g.joins(*i) => g.submit(*i, job, spec, &shapes, &self.device).await?,
            _ => batch::run_update_jobs(vec![job], spec, &shapes, &self.device)
                .await?
                .pop()
                .expect("one job, one result"),
        };
        Ok(self.stage_job(out))
    }

    /// This seed's part of a fused update: its draws, in the host pipeline's order
    /// (`host_rfm_update`; the posterior's checks before its draws, as in
    /// `checked_candidates`), its batch and its networks as they are (handles, no copies).
    #[cfg(feature = "webgpu")]
    fn update_job(
        &mut self,
        batch: &Batch,
        spec: &UpdateSpec<'_>,
        rng: &mut Rng,
    ) -> batch::UpdateJob {
        use crate::rng;
        let post = &spec.posterior;
        let (n, c, k) = (batch.n, spec.candidates, post.k);
        let d = self.critic.config.act_dim;
        let y0 = rng::normals(rng, 2 * n * c * d);
        let u = crate::trainer::pick_uniforms(rng, 2 * n);
        let t = super::posterior_times(rng, n);
        let e = rng::normals(rng, n * d);
        let checked = check_candidates(post.proposal, n * d, n, k, d)
            .and_then(|()| post.estimator.validate())
            .map_err(|e| e.to_string());
        let z = match checked {
            Ok(()) => rng::normals(rng, n * k * d),
            Err(_) => Vec::new(),
        };
        let critic = self
            .fused_critic
            .get_or_insert_with(|| fused::FusedCritic::new(&self.critic.valid()))
            .clone();
        batch::UpdateJob {
            batch: batch.clone(),
            y0,
            u,
            t,
            e,
            z,
            checked,
            policy: self.actor.with_fused(Clone::clone),
            policy_module: self.actor.policy.clone(),
            actor_opt: self.actor.opt.clone().into_fused(),
            critic,
            critic_module: self.critic.clone(),
            critic_opt: self.critic_opt.clone().into_fused(),
            target: self.packed_target(),
        }
    }

    /// Stage this seed's part of a fused update; returns what it staged, to check.
    #[cfg(feature = "webgpu")]
    fn stage_job(&mut self, out: batch::JobOut) -> UpdateOut {
        let (critic, opt, packed) = out.critic;
        self.staged_fused = Some(packed);
        self.staged = Some((critic, Adam::Fused(opt)));
        *self.critic_stats.get_mut() = Some(CriticStats::Known(out.out.critic));
        if let Some((policy, opt)) = out.actor {
            self.actor.staged = Some((policy, Adam::Fused(opt)));
        }
        out.out
    }

    /// Run this seed's fused updates with the other seeds' of `gather` (seed `index`).
    #[cfg(feature = "webgpu")]
    pub fn join_gather(&mut self, gather: batch::SeedGather, index: usize) {
        if self.device.runs_custom_kernels() {
            self.gather = Some((gather, index));
        }
    }

    /// The committed critic as a module (plain device): on WebGPU its packed copy, which a
    /// fused update steps without unpacking (one dispatch per six parameters to unpack it
    /// here), elsewhere the module itself.
    fn critic_module(&self) -> Critic {
        #[cfg(feature = "webgpu")]
        if let Some(packed) = &self.fused_critic {
            return fused::unpack_into(self.critic.valid(), packed.packed().clone());
        }
        self.critic.valid()
    }

    /// The Polyak target as a module: on WebGPU the packed copy the commits average (one
    /// dispatch per six parameters to unpack it), elsewhere the module itself.
    fn target_module(&self) -> Critic {
        #[cfg(feature = "webgpu")]
        if let Some(packed) = &self.target_packed {
            return fused::unpack_into(self.target.clone(), packed.clone());
        }
        self.target.clone()
    }

    /// The Polyak target in the fused kernels' layout: kept from the last commit, or packed.
    #[cfg(feature = "webgpu")]
    fn packed_target(&self) -> fused::FusedCritic {
        match &self.target_packed {
            Some(t) => fused::FusedCritic::from_packed(t.clone(), &self.target.config),
            None => fused::FusedCritic::new(&self.target),
        }
    }

    fn rows(&self, s: &[f32], a: &[f32]) -> (burn::tensor::Tensor<2>, burn::tensor::Tensor<2>) {
        let (o, d) = (self.critic.config.obs_dim, self.critic.config.act_dim);
        let n = a.len() / d;
        let dev = self.device.device();
        (
            tensor2(s.to_vec(), n, o, dev),
            tensor2(a.to_vec(), n, d, dev),
        )
    }
}

forward_policy_nets!(BurnNets, via_actor);

impl RfmNets for BurnNets {
    async fn sample_scored(
        &mut self,
        y: Vec<f32>,
        s: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>), DeviceError> {
        let (o, d) = self.actor.dims();
        let rows = y.len() / d;
        let dev = self.device.device();
        #[cfg(feature = "webgpu")]
        if self.device.runs_custom_kernels() {
            // One dispatch for every row's ODE and score (nets::fused).
            if self.fused_critic.is_none() {
                self.fused_critic = Some(fused::FusedCritic::new(&self.critic.valid()));
            }
            let out = self.actor.with_fused(|policy| {
                fused::sample(
                    policy,
                    self.fused_critic.as_ref(),
                    y,
                    Some(s.to_vec()),
                    fused::SeedRows::ONE,
                    dev,
                )
            });
            let both = read_f32(out).await?;
            let (mut ys, mut q) = (Vec::with_capacity(rows * d), Vec::with_capacity(rows));
            for row in both.chunks_exact(d + 1) {
                ys.extend_from_slice(&row[..d]);
                q.push(row[d]);
            }
            return Ok((ys, q));
        }
        let s = tensor2(s.to_vec(), rows, o, dev);
        let a = &self.actor;
        let out = a.policy.valid().sample(
            tensor2(y, rows, d, dev),
            Some(s.clone()),
            a.lambda,
            &a.ode,
            false,
        );
        let q = self.critic.valid().q_min(s, squash(out.y.clone()));
        read_f32_pair(out.y, q).await
    }

    async fn target_q(&mut self, s: &[f32], a: &[f32]) -> Result<Vec<f32>, DeviceError> {
        #[cfg(feature = "webgpu")]
        if self.device.runs_custom_kernels() {
            let (o, d) = (self.target.config.obs_dim, self.target.config.act_dim);
            let packed = self.packed_target();
            let dev = self.device.device();
            return read_f32(fused::q_min(
                &packed,
                s.to_vec(),
                fused::upload(a.to_vec(), dev),
                None,
                (o, d),
                fused::SeedRows::ONE,
                dev,
            ))
            .await;
        }
        let (s, a) = self.rows(s, a);
        read_f32(self.target.q_min(s, a)).await
    }

    async fn q_min(&self, s: &[f32], a: &[f32]) -> Result<Vec<f32>, DeviceError> {
        let (s, a) = self.rows(s, a);
        read_f32(self.critic_module().q_min(s, a)).await
    }

    async fn q_and_grad(
        &self,
        s: &[f32],
        a: &[f32],
        staged: bool,
    ) -> Result<(Vec<f32>, Vec<f32>), DeviceError> {
        let critic = match (&self.staged, staged) {
            (Some((c, _)), true) => c,
            _ => &self.critic,
        };
        #[cfg(feature = "webgpu")]
        if self.device.runs_custom_kernels() {
            // One dispatch for both heads and the backward pass (nets::fused), on the critic
            // as FusedAdam packed it (or packed here).
            let (o, d) = (critic.config.obs_dim, critic.config.act_dim);
            let cached = match (staged && self.staged.is_some(), &self.fused_critic) {
                (true, _) => self.staged_fused.as_ref().map(|c| c.packed().clone()),
                (false, Some(c)) => Some(c.packed().clone()),
                (false, None) => None,
            };
            let packed = match cached {
                Some(p) => fused::FusedCritic::from_packed(p, &critic.config),
                None => fused::FusedCritic::new(&critic.valid()),
            };
            let dev = self.device.device();
            let a = fused::upload(a.to_vec(), dev);
            let out = fused::q_and_grad(&packed, s.to_vec(), a, (o, d), fused::SeedRows::ONE, dev);
            let both = read_f32(out).await?;
            let (mut q, mut g) = (Vec::with_capacity(both.len() / (d + 1)), Vec::new());
            for row in both.chunks_exact(d + 1) {
                q.push(row[0]);
                g.extend_from_slice(&row[1..]);
            }
            return Ok((q, g));
        }
        let (s, a) = self.rows(s, a);
        let (q, g) = critic.valid().q_min_and_grad(s, a);
        read_f32_pair(q, g).await
    }

    async fn critic_step(
        &mut self,
        s: &[f32],
        a: &[f32],
        y: &[f32],
        lr: f64,
    ) -> Result<StepLoss, DeviceError> {
        #[cfg(feature = "webgpu")]
        if self.device.runs_custom_kernels() {
            let y = tensor2(y.to_vec(), y.len(), 1, self.device.device());
            self.fused_critic_step(s, a, y, lr);
            return self.staged_critic_loss().await;
        }
        let y = tensor2(y.to_vec(), y.len(), 1, &self.device.autodiff());
        self.critic_step_to(s, a, y, lr).await
    }

    async fn td_critic_step(
        &mut self,
        batch: &Batch,
        next_act: &[f32],
        gamma: f32,
        lr: f64,
    ) -> Result<(), DeviceError> {
        // The target stays on the device: no readback of Q' (and no upload of y).
        #[cfg(feature = "webgpu")]
        if self.device.runs_custom_kernels() {
            let a2 = fused::upload(next_act.to_vec(), self.device.device());
            self.fused_td_critic_step(batch, a2, gamma, lr);
            return Ok(());
        }
        let n = batch.rew.len();
        let dev = self.device.device();
        let not_done: Vec<f32> = batch.done.iter().map(|d| gamma * (1.0 - d)).collect();
        let (s2, a2) = self.rows(&batch.next_obs, next_act);
        let q_next = self.target.q_min(s2, a2);
        let y = tensor2(batch.rew.clone(), n, 1, dev) + tensor2(not_done, n, 1, dev) * q_next;
        self.critic_step_to(&batch.obs, &batch.act, Tensor::from_inner(y), lr)
            .await?;
        Ok(())
    }

    async fn staged_critic_loss(&self) -> Result<StepLoss, DeviceError> {
        let pending = self.critic_stats.borrow().clone();
        match pending {
            Some(CriticStats::Known(step)) => Ok(step),
            #[cfg(feature = "webgpu")]
            Some(CriticStats::OnDevice(stats)) => {
                let step = step_loss(&read_f32(*stats).await?)?;
                *self.critic_stats.borrow_mut() = Some(CriticStats::Known(step));
                Ok(step)
            }
            None => Err(super::no_staged_critic_step()),
        }
    }

    async fn rfm_update(
        &mut self,
        batch: &Batch,
        spec: &UpdateSpec<'_>,
        rng: &mut Rng,
    ) -> Result<UpdateOut, DeviceError> {
        #[cfg(feature = "webgpu")]
        if self.device.runs_custom_kernels() {
            return self.fused_rfm_update(batch, spec, rng).await;
        }
        super::host_rfm_update(self, batch, spec, rng).await
    }

    fn commit(&mut self, tau: f32) {
        self.critic_stats.get_mut().take();
        if let Some((c, o)) = self.staged.take() {
            self.critic = c;
            self.critic_opt = o;
            #[cfg(feature = "webgpu")]
            {
                self.fused_critic = self.staged_fused.take();
            }
        }
        self.actor.commit_actor();
        #[cfg(feature = "webgpu")]
        if self.device.runs_custom_kernels() {
            // One dispatch for the average of the packed critics.
            let online = match &self.fused_critic {
                Some(c) => c.packed().clone(),
                None => fused::FusedCritic::new(&self.critic.valid())
                    .packed()
                    .clone(),
            };
            let target = self.packed_target().packed().clone();
            let mixed = fused::polyak(target, online, tau);
            // The module is unpacked only when exported (`target_module`): the kernels read
            // the packed copy.
            self.target_packed = Some(mixed);
            return;
        }
        self.target = polyak(self.target.clone(), &self.critic, tau);
    }

    async fn export(&self, out: &mut Vec<NamedTensor>) -> Result<(), DeviceError> {
        self.actor.export_actor("actor", out).await?;
        export_module("critic", &self.critic_module(), out).await?;
        export_module("target", &self.target_module(), out).await
    }

    fn import(&mut self, store: &mut TensorStore) -> Result<(), String> {
        let actor = import_module("actor", self.actor.policy.clone(), store)?;
        let critic = import_module("critic", self.critic.clone(), store)?;
        let target = import_module("target", self.target.clone(), store)?;
        self.actor.replace_policy(actor);
        #[cfg(feature = "webgpu")]
        {
            self.fused_critic.take();
            self.staged_fused.take();
            self.target_packed.take();
        }
        (self.critic, self.target) = (critic, target);
        self.critic_opt = Adam::new(&self.device);
        self.staged = None;
        self.critic_stats.get_mut().take();
        Ok(())
    }
}
