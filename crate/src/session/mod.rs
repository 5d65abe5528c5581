//! A playground session: one running experiment built from an [`ExperimentSpec`], stepped in
//! batches, with the views the page draws. The page and the worker compute nothing; every
//! number comes from here. Plain Rust + burn: the wasm glue (`wasm.rs`) only converts types.
//!
//! | module | owns |
//! |---|---|
//! | this file | building a session from a spec, stepping it (with periodic greedy evaluation and the spec's step budget), which panels apply |
//! | [`guard`] | the fault guard: detection, the last good snapshot, restore, plain-language messages |
//! | [`views`] | the views: policy density beside its target, flow paths, estimator variance vs t |
//! | [`weights`] | checkpoints in and out (save, open, resume, fall back to the CPU) |
//! | [`seeds`] | the spec's `seeds`: several runs of the experiment stepped side by side |
//! | [`inject`] | the test hook that injects each fault |

pub mod guard;
pub mod inject;
pub mod seeds;
pub mod views;
pub mod weights;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::device::ComputeDevice;
use crate::envs::make_env;
use crate::sampler::SamplerTrainer;
use crate::spec::resolve::{sampler_config, train_config};
use crate::spec::{Agent, ExperimentSpec, Mode};
use crate::trainer::{EvalPolicy, NamedTensor, Trainer};

pub use guard::{ESS_COLLAPSE, ESS_WINDOW, FaultKind, LOSS_LIMIT, Q_LIMIT};
pub use views::{Axis, DensityView, FlowPaths, GridSpec, SeedView, VarianceCurve};

/// Why a session could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Config(#[from] crate::spec::ConfigErrors),
    #[error("{0}")]
    Sampler(#[from] crate::sampler::SamplerError),
    #[error("{0}")]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error("{0}")]
    Train(#[from] crate::trainer::TrainError),
    #[error("cannot load these weights: {0}")]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error("{0}")]
    Query(String),
}

/// One point of the learning curves (absent = not measured at that step).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MetricPoint {
    /// RL: env steps; sampler: updates.
    pub step: usize,
    /// Which of the experiment's seeds (the spec's `seeds`) this point is of: 0 is the spec's
    /// own `seed`, `i` is `seed + i`. Absent: 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[ts(as = "Option<usize>", optional)]
    pub seed_index: usize,
    /// The return of the training episode that ended at this step.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub episode_return: Option<f64>,
    /// Mean return of the greedy evaluation taken at this step (every `evalEvery` steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub eval_return: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub critic_loss: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub actor_loss: Option<f32>,
    /// Mean effective sample size of the posterior estimator (out of K).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub ess: Option<f32>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What a batch of steps produced.
#[derive(Clone, Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StepBatch {
    /// Total steps so far (RL: env steps; sampler: updates).
    pub step: usize,
    /// New curve points since the last batch, every seed's (each step's in seed order).
    pub points: Vec<MetricPoint>,
    /// The env to draw (RL), else `None`.
    pub env: Option<crate::envs::EnvSnapshot>,
    /// `Some(message)` when training paused itself; the last good weights are kept.
    pub fault: Option<String>,
    /// What kind of fault paused training (`None` when `fault` is).
    pub fault_kind: Option<FaultKind>,
    /// The device failed (e.g. the WebGPU device was lost): call
    /// [`Session::fall_back_to_cpu`] to continue from the last snapshot.
    pub device_lost: bool,
    /// The spec's step budget (`steps`) is used up: further batches do nothing.
    pub finished: bool,
}

/// A panel of the page and whether it applies to this experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum Panel {
    /// Policy density beside its target.
    Density,
    /// Flow paths from noise to sample.
    Paths,
    /// Estimator variance vs t.
    Variance,
    /// Effective sample size of the posterior estimator.
    Ess,
    /// The environment.
    Env,
}

/// Whether `panel` applies, and if not, why (one plain line for the page).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct PanelStatus {
    pub panel: Panel,
    pub available: bool,
    pub reason: Option<String>,
}

/// A running experiment.
pub struct Session {
    cfg: ExperimentSpec,
    device: ComputeDevice,
    /// Always `Some` (taken out only while its weights are swapped): every seed's trainer.
    inner: Option<seeds::Seeds>,
    /// Steps done before this experiment's trainer started (a resumed experiment).
    step_offset: usize,
    guard: guard::Guard,
    /// Injected faults waiting for the next [`Session::step`].
    injected: inject::Injected,
    /// RL: fixed start states for every evaluation ([`Session::evaluate_on_starts`]).
    eval_starts: Option<Vec<Vec<f64>>>,
}

pub(crate) enum Inner {
    Sampler(Box<SamplerTrainer>),
    Rl(Box<Trainer>),
}

impl Inner {
    /// A fresh trainer for `cfg` on `device`.
    fn build(cfg: &ExperimentSpec, device: &ComputeDevice) -> Result<Self, SessionError> {
        Ok(match cfg.mode {
            Mode::Sampler => Inner::Sampler(Box::new(SamplerTrainer::new(
                sampler_config(cfg),
                device.clone(),
            )?)),
            Mode::Rl => Inner::Rl(Box::new(Trainer::new(
                train_config(cfg),
                make_env(cfg.env, cfg.seed),
                device.clone(),
            )?)),
        })
    }

    /// RL with RFM on WebGPU: run the updates with the other seeds' of `gather`.
    #[cfg(feature = "webgpu")]
    fn join_gather(&mut self, gather: crate::trainer::seam::batch::SeedGather, index: usize) {
        if let Inner::Rl(t) = self {
            t.join_gather(gather, index);
        }
    }

    /// This trainer with its networks replaced by `tensors` (same shapes).
    fn with_weights(self, tensors: Vec<NamedTensor>) -> Result<Self, String> {
        Ok(match self {
            Inner::Sampler(t) => Inner::Sampler(Box::new(t.with_weights(tensors)?)),
            Inner::Rl(t) => Inner::Rl(Box::new(t.with_weights(tensors)?)),
        })
    }

    async fn export(&self) -> Result<Vec<NamedTensor>, SessionError> {
        Ok(match self {
            Inner::Sampler(t) => t.export_weights().await?,
            Inner::Rl(t) => t.export_weights().await?,
        })
    }

    /// One step of the trainer as a curve point (its own step count).
    async fn step(&mut self) -> Result<MetricPoint, SessionError> {
        match self {
            Inner::Sampler(t) => t
                .step()
                .await
                .map(|r| MetricPoint {
                    step: r.step,
                    actor_loss: Some(r.loss),
                    ess: Some(r.mean_ess),
                    ..Default::default()
                })
                .map_err(SessionError::from),
            Inner::Rl(t) => t
                .step()
                .await
                .map(|r| MetricPoint {
                    step: r.step,
                    episode_return: r.episode_return,
                    critic_loss: r.critic_loss,
                    actor_loss: r.actor_loss,
                    ess: r.ess,
                    ..Default::default()
                })
                .map_err(SessionError::from),
        }
    }
}

impl Session {
    /// Validate `cfg` and build the experiment on `device`.
    pub fn new(cfg: ExperimentSpec, device: ComputeDevice) -> Result<Self, SessionError> {
        cfg.validate()?;
        let inner = seeds::Seeds::build(&cfg, &device)?;
        Ok(Self {
            cfg,
            device,
            inner: Some(inner),
            step_offset: 0,
            guard: guard::Guard::default(),
            injected: inject::Injected::default(),
            eval_starts: None,
        })
    }

    /// Steps done (RL: env steps; sampler: updates), counting those before a resume.
    pub fn steps(&self) -> usize {
        self.step_offset
            + match self.inner() {
                Inner::Sampler(t) => t.steps_done(),
                Inner::Rl(t) => t.steps(),
            }
    }

    pub fn config(&self) -> &ExperimentSpec {
        &self.cfg
    }

    /// Seed 0's trainer (the spec's own seed).
    pub(crate) fn inner(&self) -> &Inner {
        self.seeds().primary()
    }

    pub(crate) fn seeds(&self) -> &seeds::Seeds {
        self.inner.as_ref().expect("a trainer")
    }

    /// How many seeds train side by side (the spec's `seeds`).
    pub fn seed_count(&self) -> usize {
        self.seeds().len()
    }

    pub fn device(&self) -> &ComputeDevice {
        &self.device
    }

    /// Whether a collapsed ESS pauses training (default on: the page stops to explain it; the
    /// CLI turns it off, since a sharp target at a small λ legitimately runs at ESS ≈ 1). Every
    /// other fault always pauses.
    pub fn watch_ess_collapse(&mut self, on: bool) {
        self.guard.watch_ess = on;
    }

    /// RL: every evaluation from now on (the periodic ones of `evalEvery` included) runs one
    /// greedy episode from each of `starts` instead of `evalEpisodes` from the evaluation seeds,
    /// e.g. Gymnasium's reset states for seeds 0..9, to compare curves with code that evaluates
    /// on those. The states are checked against the env here, so a bad file fails before any
    /// training.
    pub fn evaluate_on_starts(&mut self, starts: Vec<Vec<f64>>) -> Result<(), SessionError> {
        if starts.is_empty() {
            return Err(SessionError::Query(
                "the list of start states is empty".to_string(),
            ));
        }
        episodic(&mut self.inner, 0)?;
        let env = self.cfg.env;
        let mut probe = make_env(env, self.cfg.seed);
        for (i, s) in starts.iter().enumerate() {
            probe.set_state(s).map_err(|e| {
                SessionError::Query(format!("start state {i} for {}: {e}", env.as_str()))
            })?;
        }
        self.eval_starts = Some(starts);
        Ok(())
    }

    /// Whether the spec's step budget is used up (never, when `steps` is 0).
    pub fn finished(&self) -> bool {
        self.cfg.steps > 0 && self.steps() >= self.cfg.steps
    }

    /// Run up to `n` steps (sampler: updates), fewer when the spec's budget ends first. Stops
    /// early, with `fault` set, on the first fault; the weights are then the last good
    /// snapshot's. In RL a greedy evaluation runs every `evalEvery` env steps and its mean
    /// return is the point's `evalReturn`.
    pub async fn step(&mut self, n: usize) -> StepBatch {
        let mut points = Vec::with_capacity(n);
        let mut fault: Option<(FaultKind, String)> = None;
        if !self.guard.has_snapshot() {
            // The starting weights are the first snapshot.
            fault = self.take_snapshot().await.err();
        }
        if fault.is_none()
            && let Some(kind) = self.injected.pending.take()
        {
            fault = self.apply_injection(kind).await.err();
        }
        if self.injected.device_lost {
            self.injected.device_lost = false;
            return self.batch(points, None, true);
        }
        'steps: for _ in 0..n {
            if fault.is_some() || self.finished() {
                break;
            }
            for r in self.inner.as_mut().expect("a trainer").step().await {
                let mut p = match r {
                    Ok(p) => p,
                    Err(e) if guard::is_device_error(&e) => {
                        return self.batch(points, None, true);
                    }
                    Err(e) => {
                        fault = Some(self.classify(e).await);
                        break 'steps;
                    }
                };
                p.step += self.step_offset;
                if self.injected.ess_ones > 0 && p.ess.is_some() && p.seed_index == 0 {
                    self.injected.ess_ones -= 1;
                    p.ess = Some(1.0);
                }
                fault = self.guard.check_point(&self.cfg, &p).err();
                if fault.is_none() {
                    match self.maybe_evaluate(p.seed_index, p.step).await {
                        Ok(r) => p.eval_return = r,
                        Err(e) if guard::is_device_error(&e) => {
                            return self.batch(points, None, true);
                        }
                        Err(e) => fault = Some(self.classify(e).await),
                    }
                }
                if fault.is_some() {
                    break 'steps;
                }
                // RL warm-up steps carry nothing to plot.
                if p.episode_return.is_some()
                    || p.eval_return.is_some()
                    || p.critic_loss.is_some()
                    || p.actor_loss.is_some()
                {
                    points.push(p);
                }
            }
        }
        if fault.is_none() {
            fault = self.check_q().await.err();
        }
        if fault.is_none() {
            fault = self.take_snapshot().await.err();
        }
        if fault.is_some() {
            self.restore_snapshot();
            self.guard.clear_window();
            self.injected = inject::Injected::default();
        }
        self.batch(points, fault, false)
    }

    /// RL: seed `seed`'s greedy evaluation's mean return when `step` is a multiple of
    /// `evalEvery`.
    async fn maybe_evaluate(
        &mut self,
        seed: usize,
        step: usize,
    ) -> Result<Option<f64>, SessionError> {
        let every = self.cfg.eval_every;
        if matches!(self.inner(), Inner::Rl(_)) && every > 0 && step.is_multiple_of(every) {
            let episodes = self.cfg.eval_episodes;
            let report = self
                .evaluate_seed(seed, episodes, EvalPolicy::Greedy)
                .await?;
            Ok(Some(report.mean_return))
        } else {
            Ok(None)
        }
    }

    fn batch(
        &self,
        points: Vec<MetricPoint>,
        fault: Option<(FaultKind, String)>,
        device_lost: bool,
    ) -> StepBatch {
        let env = match self.inner() {
            Inner::Rl(t) => Some(t.env_snapshot()),
            Inner::Sampler(_) => None,
        };
        let (fault_kind, fault) = self.guard.describe(fault, device_lost, &self.device);
        StepBatch {
            step: self.steps(),
            points,
            env,
            fault,
            fault_kind,
            device_lost,
            finished: self.finished(),
        }
    }

    /// Which of the page's panels apply to this experiment, each with a reason when not.
    pub fn panels(&self) -> Vec<PanelStatus> {
        let (rl, sac) = (self.cfg.mode == Mode::Rl, self.cfg.agent == Agent::Sac);
        let not = |why: &str| Some(why.to_string());
        let status = |panel, reason: Option<String>| PanelStatus {
            panel,
            available: reason.is_none(),
            reason,
        };
        let sac_reason = |what: &str| {
            (rl && sac)
                .then(|| format!("Not used by SAC: {what}. Switch the agent to RFM to see it."))
        };
        vec![
            status(Panel::Density, None),
            status(
                Panel::Paths,
                sac_reason("its Gaussian policy draws actions in one step, with no flow paths"),
            ),
            status(
                Panel::Variance,
                sac_reason("it has no posterior-mean estimator"),
            ),
            status(
                Panel::Ess,
                sac_reason(
                    "it has no importance samples (it learns an entropy temperature instead)",
                ),
            ),
            status(
                Panel::Env,
                if rl {
                    None
                } else {
                    not("The sampler has no environment: it fits a known density.")
                },
            ),
        ]
    }

    /// RL: evaluation episodes of seed 0 with `policy` on a separate env (greedy for the
    /// curves): one from each fixed start state when [`Session::evaluate_on_starts`] set them,
    /// else `episodes`.
    pub async fn evaluate(
        &mut self,
        episodes: usize,
        policy: EvalPolicy,
    ) -> Result<crate::trainer::EvalReport, SessionError> {
        self.evaluate_seed(0, episodes, policy).await
    }

    /// [`Session::evaluate`] of seed index `seed` (< [`Session::seed_count`]).
    pub async fn evaluate_seed(
        &mut self,
        seed: usize,
        episodes: usize,
        policy: EvalPolicy,
    ) -> Result<crate::trainer::EvalReport, SessionError> {
        let t = episodic(&mut self.inner, seed)?;
        Ok(match &self.eval_starts {
            Some(s) => t.evaluate_from(s, policy).await?,
            None => t.evaluate_with(episodes, policy).await?,
        })
    }
}

/// Seed `seed`'s RL trainer, or why there are no episodes to evaluate (a free function, so
/// callers can hold it beside other fields of the session).
fn episodic(inner: &mut Option<seeds::Seeds>, seed: usize) -> Result<&mut Trainer, SessionError> {
    let seeds = inner.as_mut().expect("a trainer");
    let n = seeds.len();
    match seeds.get_mut(seed) {
        None => Err(SessionError::Query(format!(
            "there is no seed index {seed}: this experiment trains {n}"
        ))),
        Some(Inner::Rl(t)) => Ok(t),
        Some(Inner::Sampler(_)) => Err(SessionError::Query(
            "the sampler has no episodes to evaluate".to_string(),
        )),
    }
}

impl Session {
    /// RL: one evaluation episode from each start state ([`crate::trainer::Trainer::evaluate_from`]).
    pub async fn evaluate_from(
        &mut self,
        starts: &[Vec<f64>],
        policy: EvalPolicy,
    ) -> Result<crate::trainer::EvalReport, SessionError> {
        Ok(episodic(&mut self.inner, 0)?
            .evaluate_from(starts, policy)
            .await?)
    }

    /// Sampler: `n` policy samples against `n` exact samples of the target.
    pub async fn sampler_metrics(&self, n: usize) -> Result<crate::sampler::Metrics, SessionError> {
        match self.inner() {
            Inner::Sampler(t) => Ok(t.evaluate(n).await?),
            Inner::Rl(_) => Err(SessionError::Query(
                "sample metrics need sampler mode".to_string(),
            )),
        }
    }

    /// Every seed's weights ([`seeds`] names them).
    pub(crate) async fn export(&self) -> Result<Vec<NamedTensor>, SessionError> {
        self.seeds().export().await
    }
}

#[cfg(test)]
mod tests;
