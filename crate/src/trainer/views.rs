//! Read-only views of a running [`Trainer`] for the playground: the raw policy's action
//! samples at an observation, the critic's `min(Q1, Q2)` on a set of actions, the flow's
//! sample paths, and the env snapshot. Nothing here changes the run (own RNG streams). An RFM
//! agent answers through its network seam (`trainer::seam`), from the committed weights.

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};

use super::{Learner, TrainError, Trainer};
use crate::device::read_f32;
use crate::envs::EnvSnapshot;
use crate::rng::{self, Rng};

fn rows(v: Vec<f32>, n: usize, d: usize, device: &burn::tensor::Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(v, [n, d]), device)
}

fn repeat(obs: &[f32], n: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(obs.len() * n);
    for _ in 0..n {
        v.extend_from_slice(obs);
    }
    v
}

impl Trainer {
    /// What the env looks like now.
    pub fn env_snapshot(&self) -> EnvSnapshot {
        self.env.snapshot()
    }

    /// The env's internal state now (pendulum `[θ, θdot]`, mountain car `[x, v]`, multigoal `[x, y]`).
    pub fn env_state(&self) -> Vec<f64> {
        self.env.state()
    }

    /// `n` actions in `[-1, 1]^act` drawn from the policy itself at `obs` (no candidate pick:
    /// the density the actor is trained to match), `[n * act]`.
    pub async fn policy_samples(
        &self,
        obs: &[f32],
        n: usize,
        rng: &mut Rng,
    ) -> Result<Vec<f32>, TrainError> {
        let d = self.env.spec().act_dim;
        let dev = self.device.device();
        let states = repeat(obs, n);
        let a = match &self.agent {
            Learner::Rfm(agent) => {
                let y = agent
                    .policy_latents(rng::normals(rng, n * d), &states)
                    .await?;
                return Ok(y.iter().map(|v| v.tanh()).collect());
            }
            Learner::Sac(agent) => {
                let s = rows(states, n, obs.len(), dev);
                let (mean, log_std) = agent.actor().valid().forward(s);
                let eps = rows(rng::normals(rng, n * d), n, d, dev);
                super::sac::tanh_gaussian_sample(mean, log_std, eps).0
            }
        };
        Ok(read_f32(a).await?)
    }

    /// `min(Q1, Q2)(obs, a)` for each row of `actions` (`[m * act]`, agent units) → `[m]`.
    pub async fn q_values(&self, obs: &[f32], actions: &[f32]) -> Result<Vec<f32>, TrainError> {
        let d = self.env.spec().act_dim;
        let m = actions.len() / d;
        let states = repeat(obs, m);
        if let Learner::Rfm(agent) = &self.agent {
            return Ok(agent.q_min(&states, actions).await?);
        }
        let dev = self.device.device();
        let (s, a) = (
            rows(states, m, obs.len(), dev),
            rows(actions.to_vec(), m, d, dev),
        );
        let q = match &self.agent {
            Learner::Rfm(_) => unreachable!("answered above"),
            Learner::Sac(agent) => agent.critic().valid().q_min(s, a),
        };
        Ok(read_f32(q).await?)
    }

    /// `count` flow paths at `obs`, squashed by tanh: `(t [steps+1], paths[i][j] = [act])`.
    /// `None` for SAC, whose policy is not a flow.
    pub async fn flow_paths(
        &self,
        obs: &[f32],
        count: usize,
        rng: &mut Rng,
    ) -> Result<Option<(Vec<f32>, Vec<Vec<Vec<f32>>>)>, TrainError> {
        let Learner::Rfm(agent) = &self.agent else {
            return Ok(None);
        };
        let d = self.env.spec().act_dim;
        let y0 = rng::normals(rng, count * d);
        let s = repeat(obs, count);
        Ok(Some(agent.flow_paths(y0, s, &self.device).await?))
    }
}

impl Trainer {
    /// `(min(Q1, Q2) [m], ∇_a min(Q1, Q2) [m * act])` at `obs` for each row of `actions`.
    pub async fn q_and_grads(
        &self,
        obs: &[f32],
        actions: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>), TrainError> {
        let d = self.env.spec().act_dim;
        let m = actions.len() / d;
        let states = repeat(obs, m);
        if let Learner::Rfm(agent) = &self.agent {
            return Ok(agent.q_and_grad(&states, actions).await?);
        }
        let Learner::Sac(agent) = &self.agent else {
            unreachable!("answered above")
        };
        let dev = self.device.device();
        let (s, a) = (
            rows(states, m, obs.len(), dev),
            rows(actions.to_vec(), m, d, dev),
        );
        let (q, g) = agent.critic().valid().q_min_and_grad(s, a);
        Ok((read_f32(q).await?, read_f32(g).await?))
    }

    /// The env's observation for an internal `state` (the run's env is not touched).
    pub fn obs_for_state(&self, state: &[f64]) -> Result<Vec<f32>, crate::envs::EnvError> {
        let mut env = crate::envs::make_env(self.env_name, 0);
        env.set_state(state)?;
        Ok(env.obs())
    }

    /// Action dimension of the run's env.
    pub fn act_dim(&self) -> usize {
        self.env.spec().act_dim
    }

    /// The observation the agent acts on now.
    pub fn current_obs(&self) -> &[f32] {
        &self.obs
    }
}

impl Trainer {
    /// Every network parameter as named tensors (the `weights.json` content of [`Trainer::save`]).
    pub async fn export_weights(&self) -> Result<Vec<super::NamedTensor>, TrainError> {
        let mut tensors = Vec::new();
        match &self.agent {
            Learner::Rfm(a) => a.export(&mut tensors).await?,
            Learner::Sac(a) => a.export(&mut tensors).await?,
        }
        Ok(tensors)
    }

    /// This trainer with its networks replaced by `tensors` (from [`Trainer::export_weights`]
    /// of a run with the same networks); a shape or name mismatch is an error naming it.
    pub fn with_weights(mut self, tensors: Vec<super::NamedTensor>) -> Result<Self, String> {
        let mut store = super::TensorStore::new(tensors);
        self.agent = match self.agent {
            Learner::Rfm(a) => Learner::Rfm(Box::new(a.import(&mut store)?)),
            Learner::Sac(a) => Learner::Sac(Box::new(a.import(&mut store)?)),
        };
        store.finish()?;
        Ok(self)
    }
}
