//! Online RL: the agent loop around the RFM actor-critic ([`rfm`]) and the SAC baseline
//! ([`sac`]), configured by one [`TrainConfig`].
//!
//! [`Trainer::step`] is the loop body, readable top to bottom: act (uniform during warm-up,
//! else the agent's policy) → env step → store → (episode end: reset) → one update from a
//! replay batch. The CLI calls it in a loop, the browser worker in slices.
//!
//! Failure model: a non-finite loss, gradient norm or action stops training with
//! [`TrainError::NonFinite`] naming the step; the update is staged and only committed when every
//! check passed, so the networks keep their last good weights.
//!
//! Determinism: every draw comes from one seeded RNG (plus the env's own seeded RNG and a
//! fixed-seed RNG for evaluation, so evaluating does not change the training stream); on the
//! CPU backend the same seed gives the same numbers.

pub mod config;
pub mod rfm;
pub mod sac;
pub mod seam;
mod update;
pub mod views;
pub mod warmup;
pub mod weights;

use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use config::{Agent, ConfigError, TrainConfig};
/// The reference gradients of the fused training steps' tests (`nets::fused`).
#[cfg(all(test, feature = "webgpu"))]
pub(crate) use update::loss_norm_and_flat_grads;
/// The pick's uniforms, which the fused WebGPU update draws ahead.
#[cfg(feature = "webgpu")]
pub(crate) use update::pick_uniforms;
/// The host's pick, for the fused pick's tests (`nets::fused`).
#[cfg(all(test, feature = "webgpu"))]
pub(crate) use update::pick_with;
pub use update::td_target;
pub(crate) use update::{
    check_finite, clip_global_norm, critic_step, loss_and_global_norm, pick_candidates,
    repeat_rows, scale_grads, tensor2,
};
pub use warmup::WarmupNoise;
pub use weights::{NamedTensor, TensorStore, export_module, import_module};

use crate::device::{ComputeDevice, DeviceError};
use crate::envs::{Env, EnvName, make_env};
use crate::replay::ReplayBuffer;
use crate::rng::{self, Rng};

/// How [`Trainer::evaluate_with`] picks actions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvalPolicy {
    /// RFM: the candidate with the largest `min(Q1, Q2)`; SAC: `tanh(mean)`. The usual
    /// evaluation: it shows what the agent has learned, with the exploration noise removed.
    #[default]
    Greedy,
    /// The stochastic policy the agent trains with (RFM: softmax(`Q/λ`) over the flow's
    /// candidates; SAC: a Gaussian draw). Shows the policy's modes: on multigoal, which goals
    /// it reaches from the same start.
    Sample,
}

impl FromStr for EvalPolicy {
    type Err = TrainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "greedy" => Ok(Self::Greedy),
            "sample" => Ok(Self::Sample),
            other => Err(TrainError::UnknownEvalPolicy(other.to_string())),
        }
    }
}

/// Everything that stops a run; each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("unknown evaluation policy '{0}' (valid: greedy, sample)")]
    UnknownEvalPolicy(String),
    #[error(
        "{what} became {value} at step {step}; training stopped, the last good weights are kept"
    )]
    NonFinite {
        step: usize,
        what: &'static str,
        value: f32,
    },
    #[error("estimator failed at step {step}: {message}")]
    Estimator { step: usize, message: String },
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("evaluation start state {index}: {source}")]
    StartState {
        index: usize,
        source: crate::envs::EnvError,
    },
}

/// What one [`Trainer::step`] did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// Env steps taken so far (this one included).
    pub step: usize,
    /// The return of the episode that ended at this step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub episode_return: Option<f64>,
    /// Its length in steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub episode_length: Option<usize>,
    /// Critic loss of this step's update (none during warm-up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critic_loss: Option<f32>,
    /// Actor loss of this step's update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_loss: Option<f32>,
    /// RFM: mean effective sample size of the posterior estimator (out of K).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ess: Option<f32>,
    /// SAC: the entropy temperature after this update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f32>,
}

/// What one update measured (internal to the agents).
#[derive(Clone, Debug, Default)]
pub(crate) struct UpdateStats {
    pub critic_loss: f32,
    pub actor_loss: f32,
    pub ess: Option<f32>,
    pub alpha: Option<f32>,
}

/// The result of [`Trainer::evaluate`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvalReport {
    pub episodes: usize,
    pub mean_return: f64,
    pub returns: Vec<f64>,
    /// Episodes that ended inside each goal (`Env::goal_count` entries; empty for envs without
    /// goals). Multigoal: all four non-zero means the policy found every optimum.
    pub goals_reached: Vec<usize>,
}

/// The trained networks of one agent.
enum Learner {
    Rfm(Box<rfm::RfmAgent>),
    Sac(Box<sac::SacAgent>),
}

impl Learner {
    async fn act(
        &mut self,
        obs: &[f32],
        explore: bool,
        rng: &mut Rng,
    ) -> Result<Vec<f32>, DeviceError> {
        match self {
            Learner::Rfm(a) => a.act(obs, explore, rng).await,
            Learner::Sac(a) => a.act(obs, explore, rng).await,
        }
    }
}

/// Seed offset of the evaluation env and RNG.
const EVAL_SEED: u64 = 0x5EED_E7A1;

/// An online RL run: env, replay, agent, counters.
pub struct Trainer {
    cfg: TrainConfig,
    device: ComputeDevice,
    env: Box<dyn Env>,
    env_name: EnvName,
    replay: ReplayBuffer,
    rng: Rng,
    warmup: warmup::WarmupActions,
    agent: Learner,
    obs: Vec<f32>,
    steps: usize,
    updates: usize,
    episode_return: f64,
    episode_length: usize,
}

impl Trainer {
    /// A fresh run of `cfg.agent`: validates `cfg`, resets `env` with `cfg.seed`, builds the
    /// networks from `cfg.seed` (RFM: on the network implementation for `device`).
    pub fn new(
        cfg: TrainConfig,
        mut env: Box<dyn Env>,
        device: ComputeDevice,
    ) -> Result<Self, TrainError> {
        cfg.validate()?;
        let spec = env.spec().clone();
        let mut rng = rng::seeded(cfg.seed);
        let agent = match cfg.agent {
            Agent::Sac => Learner::Sac(Box::new(sac::SacAgent::new(
                &cfg,
                spec.obs_dim,
                spec.act_dim,
                &device,
                &mut rng,
            ))),
            Agent::Rfm => Learner::Rfm(Box::new(rfm::RfmAgent::new(
                &cfg,
                spec.obs_dim,
                spec.act_dim,
                &device,
                &mut rng,
            ))),
        };
        let obs = env.reset(Some(cfg.seed));
        Ok(Self {
            replay: ReplayBuffer::new(cfg.replay_capacity, spec.obs_dim, spec.act_dim),
            warmup: warmup::WarmupActions::new(cfg.warmup_noise, spec.act_dim),
            env_name: spec.name,
            cfg,
            device,
            env,
            rng,
            agent,
            obs,
            steps: 0,
            updates: 0,
            episode_return: 0.0,
            episode_length: 0,
        })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    pub fn device(&self) -> &ComputeDevice {
        &self.device
    }

    /// RFM on WebGPU: run the updates in the same kernels as the other seeds' of `gather`
    /// (`index`: this run's seed index); SAC and the CPU ignore it.
    #[cfg(feature = "webgpu")]
    pub(crate) fn join_gather(&mut self, gather: seam::batch::SeedGather, index: usize) {
        if let Learner::Rfm(agent) = &mut self.agent {
            agent.join_gather(gather, index);
        }
    }

    /// The agent kind (`cfg.agent`).
    pub fn agent(&self) -> Agent {
        self.cfg.agent
    }

    pub fn env_name(&self) -> EnvName {
        self.env_name
    }

    /// Env steps taken.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Updates applied.
    pub fn updates(&self) -> usize {
        self.updates
    }

    /// The replay buffer (read-only).
    pub fn replay(&self) -> &ReplayBuffer {
        &self.replay
    }

    /// The replay buffer, for fault-injection tests.
    pub fn replay_mut(&mut self) -> &mut ReplayBuffer {
        &mut self.replay
    }

    /// One env step and (after warm-up) one update.
    pub async fn step(&mut self) -> Result<StepReport, TrainError> {
        let step = self.steps + 1;
        // 1. Act: the warm-up's noise (uniform or pink), then the policy (exploring).
        let action: Vec<f32> = if self.steps < self.cfg.warmup_steps {
            self.warmup.next(&mut self.rng)
        } else {
            self.agent.act(&self.obs, true, &mut self.rng).await?
        };
        if let Some(&bad) = action.iter().find(|a| !a.is_finite()) {
            return Err(TrainError::NonFinite {
                step,
                what: "action",
                value: bad,
            });
        }
        // 2. Env step, store (done = terminated only: a time limit still bootstraps).
        let res = self.env.step(&action);
        self.replay.push(
            &self.obs,
            &action,
            res.reward as f32,
            &res.obs,
            res.terminated,
        );
        self.episode_return += res.reward;
        self.episode_length += 1;
        let mut report = StepReport {
            step,
            ..Default::default()
        };
        if res.terminated || res.truncated {
            report.episode_return = Some(self.episode_return);
            report.episode_length = Some(self.episode_length);
            self.episode_return = 0.0;
            self.episode_length = 0;
            self.obs = self.env.reset(None);
            self.warmup.episode_start();
        } else {
            self.obs = res.obs;
        }
        self.steps = step;
        // 3. One update per env step once warm-up is over.
        if self.steps >= self.cfg.warmup_steps.max(1) {
            let batch = self.replay.sample(self.cfg.batch_size, &mut self.rng);
            let stats = match &mut self.agent {
                Learner::Rfm(a) => a.update(&batch, step, &mut self.rng).await?,
                Learner::Sac(a) => a.update(&batch, step, &mut self.rng).await?,
            };
            self.updates += 1;
            report.critic_loss = Some(stats.critic_loss);
            report.actor_loss = Some(stats.actor_loss);
            report.ess = stats.ess;
            report.alpha = stats.alpha;
        }
        Ok(report)
    }

    /// Run `episodes` evaluation episodes on a separate env with the greedy policy (RFM: the
    /// candidate with the largest `min(Q1, Q2)`; SAC: `tanh(mean)`). The episode starts and
    /// candidate draws are the same at every call (fixed seeds), and the training RNG is untouched.
    pub async fn evaluate(&mut self, episodes: usize) -> Result<EvalReport, TrainError> {
        self.evaluate_with(episodes, EvalPolicy::Greedy).await
    }

    /// [`Trainer::evaluate`] with a choice of action rule ([`EvalPolicy::Sample`]: the training
    /// policy's own random draws, from the same fixed-seed RNG, so it too repeats exactly).
    pub async fn evaluate_with(
        &mut self,
        episodes: usize,
        policy: EvalPolicy,
    ) -> Result<EvalReport, TrainError> {
        self.evaluate_episodes(episodes, None, policy).await
    }

    /// One evaluation episode from each of `starts` (internal states in the layout of
    /// [`Env::set_state`], e.g. Gymnasium's reset states for seeds 0..9, to compare with code
    /// that evaluates on those), with the same fixed-seed RNG as [`Trainer::evaluate_with`].
    pub async fn evaluate_from(
        &mut self,
        starts: &[Vec<f64>],
        policy: EvalPolicy,
    ) -> Result<EvalReport, TrainError> {
        self.evaluate_episodes(starts.len(), Some(starts), policy)
            .await
    }

    async fn evaluate_episodes(
        &mut self,
        episodes: usize,
        starts: Option<&[Vec<f64>]>,
        policy: EvalPolicy,
    ) -> Result<EvalReport, TrainError> {
        let explore = policy == EvalPolicy::Sample;
        let mut env = make_env(self.env_name, self.cfg.seed ^ EVAL_SEED);
        let mut rng = rng::seeded(self.cfg.seed ^ EVAL_SEED);
        let mut returns = Vec::with_capacity(episodes);
        let mut goals_reached = vec![0; env.goal_count()];
        for ep in 0..episodes {
            let mut obs = env.reset(Some((self.cfg.seed ^ EVAL_SEED).wrapping_add(ep as u64)));
            if let Some(starts) = starts {
                env.set_state(&starts[ep])
                    .map_err(|source| TrainError::StartState { index: ep, source })?;
                obs = env.obs();
            }
            let mut total = 0.0;
            loop {
                let action = self.agent.act(&obs, explore, &mut rng).await?;
                if let Some(&bad) = action.iter().find(|a| !a.is_finite()) {
                    return Err(TrainError::NonFinite {
                        step: self.steps,
                        what: "evaluation action",
                        value: bad,
                    });
                }
                let res = env.step(&action);
                total += res.reward;
                obs = res.obs;
                if res.terminated || res.truncated {
                    if let Some(g) = env.goal_reached() {
                        goals_reached[g] += 1;
                    }
                    break;
                }
            }
            returns.push(total);
        }
        let mean_return = if episodes == 0 {
            0.0
        } else {
            returns.iter().sum::<f64>() / episodes as f64
        };
        Ok(EvalReport {
            episodes,
            mean_return,
            returns,
            goals_reached,
        })
    }

    /// Every trained parameter, flattened in module order (tests compare weights with it).
    pub async fn parameters(&self) -> Result<Vec<f32>, TrainError> {
        let mut tensors = Vec::new();
        match &self.agent {
            Learner::Rfm(a) => a.export(&mut tensors).await?,
            Learner::Sac(a) => a.export(&mut tensors).await?,
        }
        Ok(tensors.into_iter().flat_map(|t| t.data).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::Parameterisation;
    use crate::rfm::estimators::Estimator;

    fn tiny() -> TrainConfig {
        TrainConfig {
            critic_hidden: 16,
            actor_hidden: 16,
            emb_width: 8,
            batch_size: 16,
            posterior_samples: 8,
            candidates: 4,
            ode_steps: 3,
            warmup_steps: 100,
            replay_capacity: 1000,
            seed: 3,
            ..TrainConfig::playground()
        }
    }

    /// The test variants: `rfm`, `rfm-noise`, `rfm-grad` (flow policies with that
    /// estimator), `rfm-diffusion` and `sac`.
    fn variant(name: &str) -> TrainConfig {
        let rfm = |est: &str, param| TrainConfig {
            agent: Agent::Rfm,
            estimator: Estimator::from_name(est).unwrap(),
            param,
            ..tiny()
        };
        match name {
            "rfm" => rfm("rfm", Parameterisation::Flow),
            "rfm-noise" => rfm("noise", Parameterisation::Flow),
            "rfm-grad" => rfm("grad", Parameterisation::Flow),
            "rfm-diffusion" => rfm("rfm", Parameterisation::Diffusion),
            "sac" => TrainConfig {
                agent: Agent::Sac,
                ..tiny()
            },
            other => panic!("no variant {other}"),
        }
    }

    fn trainer(name: &str) -> Trainer {
        let cfg = variant(name);
        Trainer::new(
            cfg.clone(),
            make_env(EnvName::Pendulum, cfg.seed),
            ComputeDevice::cpu(),
        )
        .unwrap()
    }

    fn run(t: &mut Trainer, n: usize) -> Vec<StepReport> {
        (0..n)
            .map(|_| pollster::block_on(t.step()).unwrap())
            .collect()
    }

    #[test]
    fn sampled_evaluation_repeats_exactly_and_counts_goals() {
        let cfg = tiny();
        let mut t = Trainer::new(
            cfg.clone(),
            make_env(EnvName::Multigoal, cfg.seed),
            ComputeDevice::cpu(),
        )
        .unwrap();
        run(&mut t, 150);
        let eval = |t: &mut Trainer, p| pollster::block_on(t.evaluate_with(6, p)).unwrap();
        let (s1, s2) = (
            eval(&mut t, EvalPolicy::Sample),
            eval(&mut t, EvalPolicy::Sample),
        );
        assert_eq!(s1, s2, "fixed-seed sampled evaluation");
        let g = eval(&mut t, EvalPolicy::Greedy);
        assert_ne!(s1.returns, g.returns, "sampling must change the actions");
        for r in [&s1, &g] {
            assert_eq!(r.goals_reached.len(), 4);
            assert!(r.goals_reached.iter().sum::<usize>() <= 6);
        }
        assert_eq!("sample".parse::<EvalPolicy>().unwrap(), EvalPolicy::Sample);
        let err = "softmax".parse::<EvalPolicy>().unwrap_err().to_string();
        assert!(
            err.contains("softmax") && err.contains("greedy, sample"),
            "{err}"
        );
        // Pendulum has no goals to count.
        let mut p = trainer("sac");
        assert!(eval(&mut p, EvalPolicy::Greedy).goals_reached.is_empty());
    }

    #[test]
    fn same_seed_same_run() {
        for algo in ["rfm", "rfm-diffusion", "sac"] {
            let (mut a, mut b) = (trainer(algo), trainer(algo));
            let (ra, rb) = (run(&mut a, 300), run(&mut b, 300));
            assert_eq!(ra, rb, "{algo}");
            assert_eq!(a.updates(), 201);
            assert!(ra.iter().filter(|r| r.episode_return.is_some()).count() == 1);
            let last = ra.last().unwrap();
            assert!(last.critic_loss.unwrap().is_finite() && last.actor_loss.unwrap().is_finite());
            if algo != "sac" {
                let ess = last.ess.unwrap();
                assert!((1.0..=8.0).contains(&ess), "{ess}");
            } else {
                assert!(last.alpha.unwrap() > 0.0);
            }
            let pa = pollster::block_on(a.parameters()).unwrap();
            assert_eq!(pa, pollster::block_on(b.parameters()).unwrap());
            let ea = pollster::block_on(a.evaluate(1)).unwrap();
            assert_eq!(ea, pollster::block_on(b.evaluate(1)).unwrap());
            // Evaluation is repeatable and leaves the training stream alone.
            assert_eq!(ea, pollster::block_on(a.evaluate(1)).unwrap());
            assert_eq!(run(&mut a, 5), run(&mut b, 5));
        }
    }

    #[test]
    fn poisoned_reward_stops_with_the_step_and_keeps_the_weights() {
        for algo in ["rfm", "rfm-grad", "sac"] {
            let mut t = trainer(algo);
            run(&mut t, 120);
            let before = pollster::block_on(t.parameters()).unwrap();
            t.replay_mut().map_rewards(|_| f32::NAN);
            let err = pollster::block_on(t.step()).unwrap_err();
            match &err {
                TrainError::NonFinite { step, what, .. } => {
                    assert_eq!((*step, *what), (121, "critic loss"), "{algo}");
                }
                other => panic!("{algo}: {other}"),
            }
            assert!(err.to_string().contains("step 121"), "{err}");
            assert_eq!(
                pollster::block_on(t.parameters()).unwrap(),
                before,
                "{algo}"
            );
            assert_eq!(t.updates(), 21);
        }
    }

    #[test]
    fn exported_weights_load_into_a_fresh_trainer() {
        for algo in ["rfm-noise", "sac"] {
            let mut t = trainer(algo);
            run(&mut t, 110);
            let tensors = pollster::block_on(t.export_weights()).unwrap();
            let mut u = trainer(algo).with_weights(tensors).unwrap();
            assert_eq!(
                pollster::block_on(u.parameters()).unwrap(),
                pollster::block_on(t.parameters()).unwrap()
            );
            assert_eq!(
                pollster::block_on(u.evaluate(1)).unwrap(),
                pollster::block_on(t.evaluate(1)).unwrap()
            );
            // The loaded networks still train.
            run(&mut u, 101);
            assert_eq!(u.updates(), 2);
            let e = trainer(algo).with_weights(Vec::new()).err().unwrap();
            assert!(e.contains("weights lack actor."), "{e}");
        }
    }

    #[test]
    fn td_target_masks_terminal_rows() {
        let y = td_target(
            &[1.0, -2.0, 0.5],
            &[0.0, 1.0, 0.0],
            &[10.0, 10.0, -4.0],
            0.9,
        );
        assert_eq!(y, vec![1.0 + 0.9 * 10.0, -2.0, 0.5 - 0.9 * 4.0]);
    }

    #[test]
    fn candidate_pick_is_argmax_or_softmax() {
        let mut r = rng::seeded(0);
        let q = [0.0, 1.0, 0.5, 3.0, 2.0, 2.9];
        assert_eq!(pick_candidates(&q, 3, 0.02, false, &mut r), vec![1, 0]);
        // λ = 1 on (0, 1, 0.5): frequencies follow softmax.
        let mut counts = [0usize; 3];
        for _ in 0..20_000 {
            counts[pick_candidates(&q[..3], 3, 1.0, true, &mut r)[0]] += 1;
        }
        let z: f64 = [0.0f64, 1.0, 0.5].iter().map(|v| v.exp()).sum();
        for (i, v) in [0.0f64, 1.0, 0.5].iter().enumerate() {
            let p = counts[i] as f64 / 20_000.0;
            assert!((p - v.exp() / z).abs() < 0.015, "{i}: {p}");
        }
        assert_eq!(
            repeat_rows(&[1.0, 2.0, 3.0, 4.0], 2, 2),
            vec![1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0]
        );
    }
}
