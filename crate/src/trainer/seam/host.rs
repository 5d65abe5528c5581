//! The seam on the CPU kernels of `nets::host`: the fused ODE sampler (with scoring), the
//! explicit backward passes of the actor and critic, global-norm clip and Adam, and Polyak —
//! all on plain host buffers, no burn module in the loop. Steps stage a copy of the weights and
//! moments; `commit` swaps them in.

use super::{NetsSpec, PolicyNets, RfmNets, StepLoss};
use crate::device::{ComputeDevice, DeviceError};
use crate::nets::host::actor::{self, ActorScratch};
use crate::nets::host::critic::{CriticScratch, CriticTrainScratch};
use crate::nets::host::optim::{HostAdam, clip, global_norm};
use crate::nets::host::{HostCritic, HostPolicy, HostSampler, load};
use crate::nets::{OdeConfig, Policy};
use crate::trainer::weights::{NamedTensor, TensorStore, import_host, named_host};

/// `(name, shape, values)` of every parameter, from a host net's names and `(shape, values)`.
fn named(
    names: Vec<String>,
    params: Vec<(Vec<usize>, &[f32])>,
) -> Vec<(String, Vec<usize>, &[f32])> {
    names
        .into_iter()
        .zip(params)
        .map(|(n, (s, v))| (n, s, v))
        .collect()
}

/// [`named`] with mutable values (`shapes` read before the mutable borrow).
fn named_mut(
    names: Vec<String>,
    shapes: Vec<Vec<usize>>,
    params: Vec<&mut Vec<f32>>,
) -> Vec<(String, Vec<usize>, &mut Vec<f32>)> {
    names
        .into_iter()
        .zip(shapes)
        .zip(params)
        .map(|((n, s), v)| (n, s, v))
        .collect()
}

fn shapes(params: Vec<(Vec<usize>, &[f32])>) -> Vec<Vec<usize>> {
    params.into_iter().map(|(s, _)| s).collect()
}

fn policy_params(p: &HostPolicy) -> Vec<(String, Vec<usize>, &[f32])> {
    named(p.param_names(), p.params())
}

fn policy_params_mut(p: &mut HostPolicy) -> Vec<(String, Vec<usize>, &mut Vec<f32>)> {
    let (names, shapes) = (p.param_names(), shapes(p.params()));
    named_mut(names, shapes, p.params_mut())
}

fn critic_params(c: &HostCritic) -> Vec<(String, Vec<usize>, &[f32])> {
    named(c.param_names(), c.params())
}

fn critic_params_mut(c: &mut HostCritic) -> Vec<(String, Vec<usize>, &mut Vec<f32>)> {
    let (names, shapes) = (c.param_names(), shapes(c.params()));
    named_mut(names, shapes, c.params_mut())
}

/// One staged Adam step of a host net (the actor's and the critic's are the same): clip the
/// gradients by their global norm, restage the committed weights and moments (reusing the
/// buffers of an uncommitted step), and step them when the loss and the norm are finite.
fn staged_adam_step<N: Clone>(
    staged: &mut Option<(N, HostAdam)>,
    (committed, committed_adam): (&N, &HostAdam),
    params_mut: fn(&mut N) -> Vec<&mut Vec<f32>>,
    (loss, grads): (f32, &mut [Vec<f32>]),
    grad_clip: f32,
    lr: f64,
) -> StepLoss {
    let norm = global_norm(grads);
    clip(grads, norm, grad_clip);
    let (mut net, mut adam) = match staged.take() {
        Some((mut net, mut adam)) => {
            net.clone_from(committed);
            adam.clone_from(committed_adam);
            (net, adam)
        }
        None => (committed.clone(), committed_adam.clone()),
    };
    if loss.is_finite() && norm.is_finite() {
        adam.step(params_mut(&mut net), grads, lr);
    }
    *staged = Some((net, adam));
    StepLoss { loss, norm }
}

/// The policy, its Adam moments and the buffers of its training step.
#[derive(Debug)]
pub struct HostActor {
    policy: HostPolicy,
    adam: HostAdam,
    staged: Option<(HostPolicy, HostAdam)>,
    scratch: ActorScratch,
    lambda: f32,
    ode: OdeConfig,
    grad_clip: f32,
    device: ComputeDevice,
}

impl HostActor {
    pub fn new(policy: HostPolicy, spec: &NetsSpec, device: &ComputeDevice) -> Self {
        Self {
            policy,
            adam: HostAdam::default(),
            staged: None,
            scratch: ActorScratch::default(),
            lambda: spec.lambda,
            ode: spec.ode.clone(),
            grad_clip: spec.grad_clip,
            device: device.clone(),
        }
    }
}

impl PolicyNets for HostActor {
    async fn sample(&self, mut y: Vec<f32>, s: &[f32]) -> Result<Vec<f32>, DeviceError> {
        HostSampler::default().sample(&self.policy, &mut y, s, self.lambda, &self.ode);
        Ok(y)
    }

    async fn actor_step(
        &mut self,
        s: &[f32],
        xt: &[f32],
        t: &[f32],
        target: &[f32],
        lr: f64,
    ) -> Result<StepLoss, DeviceError> {
        let (loss, mut grads) = actor::loss_and_grads(
            &self.policy,
            s,
            xt,
            t,
            self.lambda,
            target,
            &mut self.scratch,
        );
        Ok(staged_adam_step(
            &mut self.staged,
            (&self.policy, &self.adam),
            HostPolicy::params_mut,
            (loss, &mut grads),
            self.grad_clip,
            lr,
        ))
    }

    fn commit_actor(&mut self) {
        if let Some((p, a)) = self.staged.take() {
            self.policy = p;
            self.adam = a;
        }
    }

    async fn export_actor(
        &self,
        prefix: &str,
        out: &mut Vec<NamedTensor>,
    ) -> Result<(), DeviceError> {
        out.extend(named_host(prefix, policy_params(&self.policy)));
        Ok(())
    }

    fn import_actor(&mut self, prefix: &str, store: &mut TensorStore) -> Result<(), String> {
        import_host(prefix, policy_params_mut(&mut self.policy), store)?;
        self.adam = HostAdam::default();
        self.staged = None;
        Ok(())
    }

    fn policy_module(&self) -> Policy {
        load::policy_module(&self.policy, self.device.device())
    }
}

/// The RL networks on the host: the actor, the online critic with its moments, the target.
#[derive(Debug)]
pub struct HostNets {
    actor: HostActor,
    critic: HostCritic,
    critic_adam: HostAdam,
    staged: Option<(HostCritic, HostAdam)>,
    /// The staged critic step's loss and norm.
    staged_loss: Option<StepLoss>,
    target: HostCritic,
    sampler: HostSampler,
    train_scratch: CriticTrainScratch,
    q_scratch: CriticScratch,
}

impl HostNets {
    pub fn new(
        actor: HostPolicy,
        critic: HostCritic,
        spec: &NetsSpec,
        device: &ComputeDevice,
    ) -> Self {
        Self {
            actor: HostActor::new(actor, spec, device),
            target: critic.clone(),
            critic,
            critic_adam: HostAdam::default(),
            staged: None,
            staged_loss: None,
            sampler: HostSampler::default(),
            train_scratch: CriticTrainScratch::default(),
            q_scratch: CriticScratch::default(),
        }
    }
}

forward_policy_nets!(HostNets, via_actor);

impl RfmNets for HostNets {
    async fn sample_scored(
        &mut self,
        mut y: Vec<f32>,
        s: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>), DeviceError> {
        let d = self.actor.policy.config.act_dim;
        let mut q = vec![0.0f32; y.len() / d];
        let a = &self.actor;
        self.sampler
            .sample_scored(&a.policy, &self.critic, &mut y, s, a.lambda, &a.ode, &mut q);
        Ok((y, q))
    }

    async fn target_q(&mut self, s: &[f32], a: &[f32]) -> Result<Vec<f32>, DeviceError> {
        let mut q = vec![0.0f32; a.len() / self.critic.act_dim];
        self.target.q_min(s, a, &mut q, &mut self.q_scratch);
        Ok(q)
    }

    async fn q_min(&self, s: &[f32], a: &[f32]) -> Result<Vec<f32>, DeviceError> {
        let mut q = vec![0.0f32; a.len() / self.critic.act_dim];
        self.critic
            .q_min(s, a, &mut q, &mut CriticScratch::default());
        Ok(q)
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
        let rows = a.len() / critic.act_dim;
        let (mut q, mut g) = (vec![0.0f32; rows], vec![0.0f32; a.len()]);
        critic.q_min_and_grad(s, a, &mut q, &mut g);
        Ok((q, g))
    }

    async fn critic_step(
        &mut self,
        s: &[f32],
        a: &[f32],
        y: &[f32],
        lr: f64,
    ) -> Result<StepLoss, DeviceError> {
        let (loss, mut grads) = self
            .critic
            .td_loss_and_grads(s, a, y, &mut self.train_scratch);
        let step = staged_adam_step(
            &mut self.staged,
            (&self.critic, &self.critic_adam),
            HostCritic::params_mut,
            (loss, &mut grads),
            self.actor.grad_clip,
            lr,
        );
        self.staged_loss = Some(step);
        Ok(step)
    }

    async fn staged_critic_loss(&self) -> Result<StepLoss, DeviceError> {
        self.staged_loss.ok_or_else(super::no_staged_critic_step)
    }

    fn commit(&mut self, tau: f32) {
        if let Some((c, m)) = self.staged.take() {
            self.critic = c;
            self.critic_adam = m;
        }
        self.staged_loss = None;
        self.actor.commit_actor();
        for (t, (_, o)) in self
            .target
            .params_mut()
            .into_iter()
            .zip(self.critic.params())
        {
            for (t, &o) in t.iter_mut().zip(o) {
                *t = *t * (1.0 - tau) + o * tau;
            }
        }
    }

    async fn export(&self, out: &mut Vec<NamedTensor>) -> Result<(), DeviceError> {
        self.actor.export_actor("actor", out).await?;
        out.extend(named_host("critic", critic_params(&self.critic)));
        out.extend(named_host("target", critic_params(&self.target)));
        Ok(())
    }

    fn import(&mut self, store: &mut TensorStore) -> Result<(), String> {
        // Check everything before changing anything.
        let mut actor = self.actor.policy.clone();
        let (mut critic, mut target) = (self.critic.clone(), self.target.clone());
        import_host("actor", policy_params_mut(&mut actor), store)?;
        import_host("critic", critic_params_mut(&mut critic), store)?;
        import_host("target", critic_params_mut(&mut target), store)?;
        self.actor.policy = actor;
        self.actor.adam = HostAdam::default();
        self.actor.staged = None;
        (self.critic, self.target) = (critic, target);
        self.critic_adam = HostAdam::default();
        self.staged = None;
        self.staged_loss = None;
        Ok(())
    }
}
