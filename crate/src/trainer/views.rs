//! Read-only views of a running [`Trainer`] for the playground: the raw policy's action
//! samples at an observation, the critic's `min(Q1, Q2)` on a set of actions, the flow's
//! sample paths, and the env snapshot. Nothing here changes the run (own RNG streams). An RFM
//! agent on the CPU answers from its host copies of the nets (`nets::host`), as it trains.

use crate::nets::squash;
use burn::module::Module;
use burn::tensor::{Tensor, TensorData};

use super::{Agent, TrainError, Trainer};
use crate::device::read_f32;
use crate::envs::EnvSnapshot;
use crate::nets::policy::paths_to_host;
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
            Agent::Rfm(agent) => {
                let mut y = rng::normals(rng, n * d);
                let (lambda, ode) = (self.cfg.lambda, agent.ode());
                let on_host = agent
                    .with_host(|h| h.sampler.sample(&h.policy, &mut y, &states, lambda, ode))
                    .await?;
                if on_host.is_some() {
                    return Ok(y.iter().map(|v| v.tanh()).collect());
                }
                let s = rows(states, n, obs.len(), dev);
                let out = agent
                    .actor()
                    .sample(rows(y, n, d, dev), Some(s), lambda, ode, false);
                squash(out.y)
            }
            Agent::Sac(agent) => {
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
        if let Agent::Rfm(agent) = &self.agent {
            let on_host = agent
                .with_host(|h| {
                    let mut q = vec![0.0f32; m];
                    h.critic
                        .q_min(&states, actions, &mut q, &mut Default::default());
                    q
                })
                .await?;
            if let Some(q) = on_host {
                return Ok(q);
            }
        }
        let dev = self.device.device();
        let (s, a) = (
            rows(states, m, obs.len(), dev),
            rows(actions.to_vec(), m, d, dev),
        );
        let q = match &self.agent {
            Agent::Rfm(agent) => agent.critic().valid().q_min(s, a),
            Agent::Sac(agent) => agent.critic().valid().q_min(s, a),
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
        let Agent::Rfm(agent) = &self.agent else {
            return Ok(None);
        };
        let d = self.env.spec().act_dim;
        let dev = self.device.device();
        let s = rows(repeat(obs, count), count, obs.len(), dev);
        let y0 = rows(rng::normals(rng, count * d), count, d, dev);
        let ode = agent.ode();
        let out = agent
            .actor()
            .sample(y0, Some(s), self.cfg.lambda, ode, true);
        let (ts, paths) = paths_to_host(out.path.unwrap_or_default(), ode, true).await?;
        Ok(Some((ts, paths)))
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
        if let Agent::Rfm(agent) = &self.agent {
            let on_host = agent
                .with_host(|h| {
                    let (mut q, mut g) = (vec![0.0f32; m], vec![0.0f32; m * d]);
                    h.critic.q_min_and_grad(&states, actions, &mut q, &mut g);
                    (q, g)
                })
                .await?;
            if let Some(qg) = on_host {
                return Ok(qg);
            }
        }
        let dev = self.device.device();
        let (s, a) = (
            rows(states, m, obs.len(), dev),
            rows(actions.to_vec(), m, d, dev),
        );
        let (q, g) = match &self.agent {
            Agent::Rfm(agent) => agent.critic().valid().q_min_and_grad(s, a),
            Agent::Sac(agent) => agent.critic().valid().q_min_and_grad(s, a),
        };
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
            Agent::Rfm(a) => a.export(&mut tensors).await?,
            Agent::Sac(a) => a.export(&mut tensors).await?,
        }
        Ok(tensors)
    }

    /// This trainer with its networks replaced by `tensors` (from [`Trainer::export_weights`]
    /// of a run with the same networks); a shape or name mismatch is an error naming it.
    pub fn with_weights(mut self, tensors: Vec<super::NamedTensor>) -> Result<Self, String> {
        let mut store = super::TensorStore::new(tensors);
        self.agent = match self.agent {
            Agent::Rfm(a) => Agent::Rfm(Box::new(a.import(&mut store)?)),
            Agent::Sac(a) => Agent::Sac(Box::new(a.import(&mut store)?)),
        };
        store.finish()?;
        Ok(self)
    }
}
