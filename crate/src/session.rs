//! A playground session: one running experiment built from a [`PlaygroundConfig`], with the
//! views the page draws (learning-curve points, the policy density beside its target, flow
//! paths, estimator variance vs t). The page and the worker compute nothing; every number
//! comes from here. Plain Rust + burn: the wasm glue (`wasm.rs`) only converts types.
//!
//! Faults pause the session with a plain-language message ([`StepBatch::fault`]): a NaN/inf
//! loss, action or weight, NaN/inf or exploding Q values, exploding TD targets (an RL loss
//! above [`LOSS_LIMIT`]) and a collapsed estimator (mean ESS of the last [`ESS_WINDOW`] updates
//! at most [`ESS_COLLAPSE`]). The session keeps a snapshot of the last good weights (taken after
//! every healthy batch, checked finite) and restores it on a fault, so the user can change a
//! setting and go on ([`Session::resume_from`] carries the weights and step count into the new
//! experiment). A failing device (WebGPU lost) is reported as [`StepBatch::device_lost`];
//! [`Session::fall_back_to_cpu`] rebuilds the experiment on the CPU from the same snapshot.
//! Tests inject each fault with [`Session::inject_fault`].

use serde::{Deserialize, Serialize};

use burn::tensor::{Tensor, TensorData};

use crate::config::{Agent, Mode, PlaygroundConfig};
use crate::device::ComputeDevice;
use crate::envs::make_env;
use crate::metrics::{self, Grid2d, VarianceConfig};
use crate::nets::OdeConfig;
use crate::nets::policy::paths_to_host;
use crate::rfm::estimators::Estimator;
use crate::rfm::estimators::{self as estimators, PosteriorBatch};
use crate::rfm::path::Path;
use crate::rfm::targets::boltzmann_latent_log_prob_grad;
use crate::rfm::targets::{LogDensity, Target};
use crate::rng;
use crate::sampler::{SamplerConfig, SamplerTrainer};
use crate::trainer::Trainer;
use crate::trainer::config::TrainConfig;

/// Histogram cells of the 1-D density views.
pub const GRID_1D: usize = 61;
/// Histogram cells per axis of the 2-D density views.
pub const GRID_2D: usize = 40;
/// Samples histogrammed for a density view, unless the query says otherwise.
pub const DENSITY_SAMPLES: usize = 4000;

/// Why a session could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigErrors),
    #[error("{0}")]
    Sampler(#[from] crate::sampler::SamplerError),
    #[error("{0}")]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error("{0}")]
    Train(#[from] crate::trainer::TrainError),
    #[error("{0}")]
    Query(String),
}

/// One point of the learning curves (absent = not measured at that step).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricPoint {
    pub step: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub episode_return: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_return: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critic_loss: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_loss: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ess: Option<f32>,
}

/// What a batch of steps produced.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepBatch {
    pub step: usize,
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
}

/// The kinds of fault the session detects (and the tests inject, see [`Session::inject_fault`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// A loss, action or Q value became NaN or infinite.
    NanQ,
    /// A network weight became NaN or infinite.
    NanWeights,
    /// The posterior estimator's effective sample size collapsed to about 1.
    EssCollapse,
    /// Regression/TD targets blew up (a loss or a Q value beyond the limits).
    ExplodingTargets,
    /// The compute device failed (WebGPU device lost or adapter gone).
    DeviceLost,
}

impl std::str::FromStr for FaultKind {
    type Err = SessionError;
    fn from_str(s: &str) -> Result<Self, SessionError> {
        Ok(match s {
            "nan-q" => Self::NanQ,
            "nan-weights" => Self::NanWeights,
            "ess-collapse" => Self::EssCollapse,
            "exploding-targets" => Self::ExplodingTargets,
            "device-lost" => Self::DeviceLost,
            other => {
                return Err(SessionError::Query(format!(
                    "unknown fault '{other}' (nan-q, nan-weights, ess-collapse, exploding-targets, device-lost)"
                )));
            }
        })
    }
}

/// An RL critic or actor loss above this (finite) value counts as exploding targets (healthy
/// page runs stay below 1e4). Sampler mode has no such limit: the gradient estimator's
/// regression targets are heavy-tailed, and its loss on gmm8 legitimately reaches ~1e12.
pub const LOSS_LIMIT: f32 = 1e10;
/// A Q value beyond ±this counts as exploding.
pub const Q_LIMIT: f32 = 1e7;
/// Updates whose mean ESS is watched for a collapse.
pub const ESS_WINDOW: usize = 25;
/// Mean ESS at or below this over [`ESS_WINDOW`] updates (with K ≥ 4) is a collapse.
pub const ESS_COLLAPSE: f32 = 1.05;

/// One axis of a grid.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    pub min: f32,
    pub max: f32,
    pub n: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridSpec {
    pub dims: usize,
    pub x: Axis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<Axis>,
}

/// Policy density beside its target on a grid: masses per cell, each summing to 1, row-major
/// with x fastest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DensityView {
    pub grid: GridSpec,
    pub policy: Vec<f32>,
    pub target: Vec<f32>,
    /// KL(target ‖ policy) on the grid, nats (policy histogram smoothed by a pseudo-count).
    pub kl: f32,
    /// KL(target ‖ uniform) on the same grid: what a policy that knows nothing would score
    /// against this target. In RL the target sharpens as the critic learns, so this, not the
    /// first KL, is the yardstick for how much of the target the policy has picked up.
    pub kl_uniform: f32,
    pub state: Option<Vec<f64>>,
}

/// Flow paths from noise (t = 0) to sample (t = 1): `paths[i][j]` is path i at `t[j]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowPaths {
    pub t: Vec<f32>,
    pub paths: Vec<Vec<Vec<f32>>>,
}

/// Estimator variance vs t, per estimator name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VarianceCurve {
    pub t: Vec<f32>,
    pub by_estimator: std::collections::BTreeMap<String, Vec<f32>>,
}

/// A running experiment.
pub struct Session {
    cfg: PlaygroundConfig,
    device: ComputeDevice,
    /// Always `Some` (taken out only while its weights are swapped).
    inner: Option<Inner>,
    /// Steps done before this experiment's trainer started (a resumed experiment).
    step_offset: usize,
    /// The last good weights (checked finite) and the total step count they belong to.
    snapshot: Option<(usize, Vec<crate::trainer::NamedTensor>)>,
    /// Recent ESS readings (the collapse detector's window).
    ess_recent: std::collections::VecDeque<f32>,
    /// Injected faults waiting for the next [`Session::step`].
    injected: Injected,
}

#[derive(Default)]
struct Injected {
    pending: Option<FaultKind>,
    /// ESS readings still to be replaced by 1.0 (a simulated collapse).
    ess_ones: usize,
    device_lost: bool,
}

enum Inner {
    Sampler(Box<SamplerTrainer>),
    Rl(Box<Trainer>),
}

impl Inner {
    /// This trainer with its networks replaced by `tensors` (same shapes).
    fn with_weights(self, tensors: Vec<crate::trainer::NamedTensor>) -> Result<Self, String> {
        Ok(match self {
            Inner::Sampler(t) => Inner::Sampler(Box::new(t.with_weights(tensors)?)),
            Inner::Rl(t) => Inner::Rl(Box::new(t.with_weights(tensors)?)),
        })
    }
}

/// Pseudo-count added to every histogram cell before the KL.
const PSEUDO_COUNT: f32 = 0.5;

impl Session {
    /// Validate `cfg` and build the experiment on `device`.
    pub fn new(cfg: PlaygroundConfig, device: ComputeDevice) -> Result<Self, SessionError> {
        cfg.validate()?;
        let inner = match cfg.mode {
            Mode::Sampler => Inner::Sampler(Box::new(SamplerTrainer::new(
                sampler_config(&cfg),
                device.clone(),
            )?)),
            Mode::Rl => {
                let env = make_env(cfg.env, cfg.seed);
                Inner::Rl(Box::new(Trainer::new(
                    rl_config(&cfg)?,
                    env,
                    device.clone(),
                )?))
            }
        };
        Ok(Self {
            cfg,
            device,
            inner: Some(inner),
            step_offset: 0,
            snapshot: None,
            ess_recent: Default::default(),
            injected: Injected::default(),
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

    pub fn config(&self) -> &PlaygroundConfig {
        &self.cfg
    }

    fn inner(&self) -> &Inner {
        self.inner.as_ref().expect("a trainer")
    }

    fn inner_mut(&mut self) -> &mut Inner {
        self.inner.as_mut().expect("a trainer")
    }

    pub fn device(&self) -> &ComputeDevice {
        &self.device
    }

    /// Run `n` steps (sampler: updates). Stops early, with `fault` set, on the first fault; the
    /// weights are then the last good snapshot's.
    pub async fn step(&mut self, n: usize) -> StepBatch {
        let mut points = Vec::with_capacity(n);
        let mut fault: Option<(FaultKind, String)> = None;
        if self.snapshot.is_none() {
            // The starting weights are the first snapshot.
            if let Err(f) = self.take_snapshot().await {
                fault = Some(f);
            }
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
        for _ in 0..n {
            if fault.is_some() {
                break;
            }
            let r = match self.inner_mut() {
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
            };
            match r {
                Ok(mut p) => {
                    p.step += self.step_offset;
                    if self.injected.ess_ones > 0 && p.ess.is_some() {
                        self.injected.ess_ones -= 1;
                        p.ess = Some(1.0);
                    }
                    fault = self.check_point(&p).err();
                    // RL warm-up steps carry nothing to plot.
                    if fault.is_none()
                        && (p.episode_return.is_some()
                            || p.critic_loss.is_some()
                            || p.actor_loss.is_some())
                    {
                        points.push(p);
                    }
                }
                Err(e) if is_device_error(&e) => return self.batch(points, None, true),
                Err(e) => fault = Some(self.classify(e).await),
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
            self.ess_recent.clear();
            self.injected = Injected::default();
        }
        self.batch(points, fault, false)
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
        let at = self.snapshot.as_ref().map_or(0, |s| s.0);
        let (fault_kind, fault) = match fault {
            Some((k, why)) => (
                Some(k),
                Some(format!(
                    "{why}. The last good weights (step {at}) are restored; {}",
                    advice(k)
                )),
            ),
            None if device_lost => (
                Some(FaultKind::DeviceLost),
                Some(format!(
                    "the {} device was lost; the experiment can go on from step {at} on the CPU",
                    self.device.info().adapter
                )),
            ),
            None => (None, None),
        };
        StepBatch {
            step: self.steps(),
            points,
            env,
            fault,
            fault_kind,
            device_lost,
        }
    }

    /// A step the trainer refused: NaN weights (poisoned before the step) or a NaN/inf value
    /// met during the update.
    async fn classify(&self, e: SessionError) -> (FaultKind, String) {
        if let Err(bad) = self.check_weights().await {
            return bad;
        }
        use crate::sampler::SamplerError;
        use crate::trainer::TrainError;
        // From finite weights, an infinite value means the numbers blew up; NaN is NaN.
        let kind = |v: f32| {
            if v.is_infinite() {
                FaultKind::ExplodingTargets
            } else {
                FaultKind::NanQ
            }
        };
        let blew = |v: f32| {
            if v.is_infinite() {
                " (the targets are blowing up)"
            } else {
                ""
            }
        };
        match e {
            SessionError::Train(TrainError::NonFinite { step, what, value }) => (
                kind(value),
                format!("the {what} became {value} at step {step}{}", blew(value)),
            ),
            SessionError::Sampler(SamplerError::NonFinite { step, value }) => (
                kind(value),
                format!("the loss became {value} at step {step}{}", blew(value)),
            ),
            other => (FaultKind::NanQ, other.to_string()),
        }
    }

    /// Every weight must be finite.
    async fn check_weights(&self) -> Result<Vec<crate::trainer::NamedTensor>, (FaultKind, String)> {
        let tensors = self
            .export()
            .await
            .map_err(|e| (FaultKind::NanWeights, e.to_string()))?;
        for t in &tensors {
            if let Some(v) = t.data.iter().find(|v| !v.is_finite()) {
                return Err((
                    FaultKind::NanWeights,
                    format!(
                        "a weight of the {} network became {v} at step {}",
                        t.name.split('.').next().unwrap_or(&t.name),
                        self.steps()
                    ),
                ));
            }
        }
        Ok(tensors)
    }

    /// Losses and ESS of one step: exploding or collapsed → a fault.
    fn check_point(&mut self, p: &MetricPoint) -> Result<(), (FaultKind, String)> {
        for (what, v) in [("critic", p.critic_loss), ("actor", p.actor_loss)] {
            let Some(v) = v else { continue };
            if !v.is_finite() {
                return Err((
                    FaultKind::NanQ,
                    format!("the {what} loss became {v} at step {}", p.step),
                ));
            }
            if v > LOSS_LIMIT && self.cfg.mode == Mode::Rl {
                return Err((
                    FaultKind::ExplodingTargets,
                    format!(
                        "the {what} loss exploded to {v:.3e} at step {} (its targets are blowing up)",
                        p.step
                    ),
                ));
            }
        }
        let watch_ess =
            self.cfg.k >= 4 && (self.cfg.mode == Mode::Sampler || self.cfg.agent == Agent::Rfm);
        if let Some(e) = p.ess.filter(|_| watch_ess) {
            if self.ess_recent.len() == ESS_WINDOW {
                self.ess_recent.pop_front();
            }
            self.ess_recent.push_back(e);
            let mean = self.ess_recent.iter().sum::<f32>() / self.ess_recent.len() as f32;
            if self.ess_recent.len() == ESS_WINDOW && (mean.is_nan() || mean <= ESS_COLLAPSE) {
                return Err((
                    FaultKind::EssCollapse,
                    format!(
                        "the estimator's effective sample size collapsed to {mean:.2} of {} samples by step {} (one sample carries all the weight, so the targets are noise)",
                        self.cfg.k, p.step
                    ),
                ));
            }
        }
        Ok(())
    }

    /// RL: the critic's Q at the current observation must be finite and within ±[`Q_LIMIT`].
    async fn check_q(&self) -> Result<(), (FaultKind, String)> {
        let Inner::Rl(t) = self.inner() else {
            return Ok(());
        };
        let centres = action_grid(t.act_dim(), 3);
        let q = t
            .q_values(t.current_obs(), &centres)
            .await
            .map_err(|e| (FaultKind::NanQ, e.to_string()))?;
        let at = self.steps();
        if let Some(v) = q.iter().find(|v| !v.is_finite()) {
            return Err((
                FaultKind::NanQ,
                format!("the critic's Q values became {v} at step {at}"),
            ));
        }
        if let Some(v) = q.iter().find(|v| v.abs() > Q_LIMIT) {
            return Err((
                FaultKind::ExplodingTargets,
                format!("the critic's Q values exploded to {v:.3e} at step {at}"),
            ));
        }
        Ok(())
    }

    async fn export(&self) -> Result<Vec<crate::trainer::NamedTensor>, SessionError> {
        Ok(match self.inner() {
            Inner::Sampler(t) => t.export_weights().await?,
            Inner::Rl(t) => t.export_weights().await?,
        })
    }

    /// Keep the current weights as the last good snapshot, unless one is not finite.
    async fn take_snapshot(&mut self) -> Result<(), (FaultKind, String)> {
        let tensors = self.check_weights().await?;
        self.snapshot = Some((self.steps(), tensors));
        Ok(())
    }

    /// Put the snapshot's weights back into the running trainer (replay, counters and the env
    /// stay as they are).
    fn restore_snapshot(&mut self) {
        let Some((_, tensors)) = self.snapshot.clone() else {
            return;
        };
        let inner = self.inner.take().expect("a trainer");
        // The snapshot came from this very trainer, so its shapes match.
        self.inner = Some(
            inner
                .with_weights(tensors)
                .expect("a snapshot fits the trainer it came from"),
        );
    }

    /// Test hook: make the next [`Session::step`] meet `kind` (NaN critic or policy weights,
    /// ESS readings of 1, critic weights scaled by 1000 so the TD loss explodes, or a lost
    /// device). The Q faults need a critic (RL mode). The session must detect it, pause with a message and restore the last good
    /// weights (a lost device instead asks for [`Session::fall_back_to_cpu`]).
    #[doc(hidden)]
    pub fn inject_fault(&mut self, kind: FaultKind) -> Result<(), SessionError> {
        let rl = matches!(self.inner(), Inner::Rl(_));
        if !rl && matches!(kind, FaultKind::NanQ | FaultKind::ExplodingTargets) {
            return Err(SessionError::Query(format!(
                "the '{kind:?}' fault needs a critic: use RL mode"
            )));
        }
        match kind {
            FaultKind::EssCollapse => self.injected.ess_ones = ESS_WINDOW,
            FaultKind::DeviceLost => self.injected.device_lost = true,
            _ => self.injected.pending = Some(kind),
        }
        Ok(())
    }

    async fn apply_injection(&mut self, kind: FaultKind) -> Result<(), (FaultKind, String)> {
        // NaN Q: the critic's weights become NaN; NaN weights: the policy's; exploding
        // targets: the critic's weights scaled by 1000, so its outputs, and the loss against
        // the TD targets, blow up.
        let (prefix, poison): (&str, fn(f32) -> f32) = match (kind, self.inner()) {
            (FaultKind::NanQ, _) => ("critic", |_| f32::NAN),
            (FaultKind::ExplodingTargets, _) => ("critic", |v| v * 1000.0),
            (_, Inner::Rl(_)) => ("actor", |_| f32::NAN),
            (_, Inner::Sampler(_)) => ("policy", |_| f32::NAN),
        };
        let mut tensors = self
            .export()
            .await
            .map_err(|e| (FaultKind::NanWeights, e.to_string()))?;
        for t in tensors.iter_mut().filter(|t| t.name.starts_with(prefix)) {
            t.data.iter_mut().for_each(|v| *v = poison(*v));
        }
        let inner = self.inner.take().expect("a trainer");
        self.inner = Some(inner.with_weights(tensors).expect("same shapes"));
        match kind {
            FaultKind::NanQ => self.check_q().await,
            FaultKind::NanWeights => self.check_weights().await.map(drop),
            _ => Ok(()),
        }
    }

    /// Rebuild the experiment on the CPU from the last snapshot (weights + step count), e.g.
    /// after the WebGPU device was lost. RL starts a fresh replay buffer (refilled by the
    /// warm-up); the optimiser starts afresh. Returns the step count it continues from.
    pub fn fall_back_to_cpu(&mut self) -> Result<usize, SessionError> {
        let (steps, tensors) = match &self.snapshot {
            Some(s) => s.clone(),
            None => (0, Vec::new()),
        };
        let mut fresh = Session::new(self.cfg.clone(), ComputeDevice::cpu())?;
        if !tensors.is_empty() {
            fresh.set_weights(tensors, steps)?;
        }
        *self = fresh;
        Ok(steps)
    }

    /// The policy's density beside its target.
    pub async fn density(
        &self,
        samples: Option<usize>,
        state: Option<Vec<f64>>,
    ) -> Result<DensityView, SessionError> {
        let n = samples.unwrap_or(DENSITY_SAMPLES).clamp(100, 100_000);
        match self.inner() {
            Inner::Sampler(t) => {
                let target = Target::from_name(&self.cfg.target)
                    .map_err(|e| SessionError::Query(e.to_string()))?;
                let (lo, hi) = target.bounds();
                let grid = Grid2d::square(lo, hi, GRID_2D);
                let xs = t.sample(n).await?;
                let tgt = target_masses(&target, &grid, self.cfg.lambda);
                let pol = histogram(&xs, &grid);
                let kl = kl_smoothed(&tgt, &pol, n, PSEUDO_COUNT);
                Ok(DensityView {
                    grid: GridSpec {
                        dims: 2,
                        x: Axis {
                            min: lo,
                            max: hi,
                            n: GRID_2D,
                        },
                        y: Some(Axis {
                            min: lo,
                            max: hi,
                            n: GRID_2D,
                        }),
                    },
                    policy: pol.iter().map(|&c| c / n as f32).collect(),
                    kl_uniform: kl_uniform(&tgt),
                    target: tgt,
                    kl,
                    state: None,
                })
            }
            Inner::Rl(t) => {
                let (state, obs) = probe_point(t, state)?;
                let d = t.act_dim();
                let bins = if d == 1 { GRID_1D } else { GRID_2D };
                let centres = action_grid(d, bins);
                let q = t.q_values(&obs, &centres).await?;
                let tgt = softmax_scaled(&q, 1.0 / self.cfg.lambda);
                let mut r = rng::seeded(self.cfg.seed ^ 0xde75_0000 ^ t.steps() as u64);
                let a = t.policy_samples(&obs, n, &mut r).await?;
                let pol = action_histogram(&a, d, bins);
                let kl = kl_smoothed(&tgt, &pol, n, PSEUDO_COUNT);
                let axis = Axis {
                    min: -1.0,
                    max: 1.0,
                    n: bins,
                };
                Ok(DensityView {
                    grid: GridSpec {
                        dims: d,
                        x: axis,
                        y: (d == 2).then_some(axis),
                    },
                    policy: pol.iter().map(|&c| c / n as f32).collect(),
                    kl_uniform: kl_uniform(&tgt),
                    target: tgt,
                    kl,
                    state: Some(state),
                })
            }
        }
    }

    /// `count` flow paths from noise to sample.
    pub async fn paths(
        &self,
        count: usize,
        state: Option<Vec<f64>>,
    ) -> Result<FlowPaths, SessionError> {
        let count = count.clamp(1, 2000);
        match self.inner() {
            Inner::Sampler(t) => {
                let ode = OdeConfig {
                    solver: self.cfg.solver,
                    steps: self.cfg.ode_steps,
                    ..OdeConfig::default()
                };
                let mut r = rng::seeded(self.cfg.seed ^ 0x9a75_0000 ^ t.steps_done() as u64);
                let y0 = Tensor::<2>::from_data(
                    TensorData::new(rng::normals(&mut r, count * 2), [count, 2]),
                    self.device.device(),
                );
                let out = t.policy().sample(y0, None, self.cfg.lambda, &ode, true);
                let (ts, paths) = paths_to_host(out.path.unwrap_or_default(), &ode, false)
                    .await
                    .map_err(|e| SessionError::Query(e.to_string()))?;
                Ok(FlowPaths { t: ts, paths })
            }
            Inner::Rl(t) => {
                let (_, obs) = probe_point(t, state)?;
                let mut r = rng::seeded(self.cfg.seed ^ 0x9a75_0000 ^ t.steps() as u64);
                match t.flow_paths(&obs, count, &mut r).await? {
                    Some((ts, paths)) => Ok(FlowPaths { t: ts, paths }),
                    None => Err(SessionError::Query(
                        "SAC's Gaussian policy has no flow paths; choose the RFM agent".to_string(),
                    )),
                }
            }
        }
    }

    /// Trace variance of the velocity target vs t for the noise, gradient and optimal-CV
    /// estimators (and the chosen one), on points drawn from the path marginal.
    pub async fn variance(&self, state: Option<Vec<f64>>) -> Result<VarianceCurve, SessionError> {
        match self.inner() {
            Inner::Sampler(_) => {
                let target = Target::from_name(&self.cfg.target)
                    .map_err(|e| SessionError::Query(e.to_string()))?;
                let mut rng = rng::seeded(self.cfg.seed ^ 0x7a11_0000);
                let data = match target.sample(&mut rng, 256) {
                    Some(d) => d,
                    None => return Err(SessionError::Query("target has no exact sampler".into())),
                };
                let path = self.cfg.param.path();
                let vcfg = VarianceConfig {
                    ts: (1..=9).map(|i| i as f32 / 10.0).collect(),
                    n_points: 8,
                    k: self.cfg.k.max(2),
                    reps: 16,
                };
                let tempered = Tempered {
                    inner: &target,
                    lambda: self.cfg.lambda,
                };
                let mut by = std::collections::BTreeMap::new();
                let mut names = vec!["noise".to_string(), "grad".to_string(), "rfm".to_string()];
                if !names.contains(&self.cfg.estimator) {
                    names.push(self.cfg.estimator.clone());
                }
                for name in names {
                    let est = Estimator::from_name(&name)
                        .map_err(|e| SessionError::Query(e.to_string()))?;
                    let mut r = rng::seeded(self.cfg.seed ^ 0x7a12_0000);
                    let bins = metrics::estimator_variance_by_t(
                        &path, &est, &tempered, &data, None, &vcfg, &mut r,
                    )?;
                    by.insert(name, bins.iter().map(|b| b.variance).collect());
                }
                Ok(VarianceCurve {
                    t: vcfg.ts,
                    by_estimator: by,
                })
            }
            Inner::Rl(t) => {
                let (_, obs) = probe_point(t, state)?;
                rl_variance(t, &obs, &self.cfg).await
            }
        }
    }
}

/// The env state a view looks at (the given one, else the run's current state) and its
/// observation.
fn probe_point(t: &Trainer, state: Option<Vec<f64>>) -> Result<(Vec<f64>, Vec<f32>), SessionError> {
    let state = state.unwrap_or_else(|| t.env_state());
    let obs = t
        .obs_for_state(&state)
        .map_err(|e| SessionError::Query(e.to_string()))?;
    Ok((state, obs))
}

/// A saved experiment's weights: the config that built the networks, the step count and every
/// parameter. JSON, so a person can see what a file holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightsFile {
    /// Always [`WEIGHTS_FORMAT`].
    pub format: String,
    pub version: u32,
    pub config: PlaygroundConfig,
    pub steps: usize,
    pub tensors: Vec<crate::trainer::NamedTensor>,
}

/// The `format` tag of a weights file.
pub const WEIGHTS_FORMAT: &str = "rfm-playground-weights";

impl Session {
    /// The current weights as a JSON file's bytes.
    pub async fn save_weights(&self) -> Result<Vec<u8>, SessionError> {
        let (steps, tensors) = (self.steps(), self.export().await?);
        let file = WeightsFile {
            format: WEIGHTS_FORMAT.to_string(),
            version: 1,
            config: self.cfg.clone(),
            steps,
            tensors,
        };
        serde_json::to_vec(&file).map_err(|e| SessionError::Query(e.to_string()))
    }

    /// Replace the networks by the weights in `bytes`. The file must come from an experiment
    /// with the same networks (mode, task, agent, parameterisation, width); otherwise nothing
    /// changes and the error says what differs. Training goes on from the loaded weights with a
    /// fresh optimiser (and, in RL, an empty replay buffer) and the step count starts at 0.
    pub fn load_weights(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        let file = self.read_weights(bytes)?;
        self.set_weights(file.tensors, 0)
    }

    /// Like [`Session::load_weights`], but the experiment continues at the file's step count
    /// (an autosave, or the last good weights carried into a changed setting). Returns it.
    pub fn resume_from(&mut self, bytes: &[u8]) -> Result<usize, SessionError> {
        let file = self.read_weights(bytes)?;
        self.set_weights(file.tensors, file.steps)?;
        Ok(file.steps)
    }

    /// Parse a weights file and check that it fits this experiment's networks.
    fn read_weights(&self, bytes: &[u8]) -> Result<WeightsFile, SessionError> {
        let bad = |m: String| SessionError::Query(format!("cannot load these weights: {m}"));
        let file: WeightsFile =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not a weights file ({e})")))?;
        if file.format != WEIGHTS_FORMAT || file.version != 1 {
            return Err(bad(format!(
                "unknown format '{}' v{}",
                file.format, file.version
            )));
        }
        let (a, b) = (&file.config, &self.cfg);
        let same_net = a.mode == b.mode
            && a.agent == b.agent
            && a.param == b.param
            && a.hidden == b.hidden
            && match b.mode {
                Mode::Rl => a.env == b.env,
                Mode::Sampler => true,
            };
        if !same_net {
            return Err(bad(format!(
                "they are for {} (hidden {}), this experiment is {} (hidden {}); switch to the same settings first",
                describe(a),
                a.hidden,
                describe(b),
                b.hidden
            )));
        }
        if let Some(t) = file
            .tensors
            .iter()
            .find(|t| t.data.iter().any(|v| !v.is_finite()))
        {
            return Err(bad(format!("{} holds NaN or infinite values", t.name)));
        }
        Ok(file)
    }

    /// A fresh trainer with `tensors` as its weights, continuing at `steps`; on a mismatch
    /// nothing changes.
    fn set_weights(
        &mut self,
        tensors: Vec<crate::trainer::NamedTensor>,
        steps: usize,
    ) -> Result<(), SessionError> {
        let bad = |m: String| SessionError::Query(format!("cannot load these weights: {m}"));
        let device = self.device.clone();
        let fresh = match self.cfg.mode {
            Mode::Sampler => Inner::Sampler(Box::new(SamplerTrainer::new(
                sampler_config(&self.cfg),
                device,
            )?)),
            Mode::Rl => {
                let env = make_env(self.cfg.env, self.cfg.seed);
                let t = Trainer::new(rl_config(&self.cfg)?, env, device)?;
                Inner::Rl(Box::new(t))
            }
        };
        self.inner = Some(fresh.with_weights(tensors.clone()).map_err(bad)?);
        self.step_offset = steps;
        self.snapshot = Some((steps, tensors));
        self.ess_recent.clear();
        self.injected = Injected::default();
        Ok(())
    }
}

/// A device failure (readback failed, WebGPU gone) rather than a numerical fault.
fn is_device_error(e: &SessionError) -> bool {
    use crate::device::DeviceError;
    matches!(
        e,
        SessionError::Train(crate::trainer::TrainError::Device(
            DeviceError::Readback(_) | DeviceError::WebGpuUnavailable(_)
        )) | SessionError::Sampler(crate::sampler::SamplerError::Device(
            DeviceError::Readback(_) | DeviceError::WebGpuUnavailable(_)
        ))
    )
}

/// What the user can change after a fault of `kind`.
fn advice(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::EssCollapse => {
            "raise the temperature λ or the posterior samples K, then press play"
        }
        FaultKind::ExplodingTargets => "lower the learning rates (or raise λ), then press play",
        _ => "change a setting (e.g. a smaller learning rate) and press play",
    }
}

fn describe(c: &PlaygroundConfig) -> String {
    match c.mode {
        Mode::Rl => format!("RL on {} with {:?}", c.env, c.agent),
        Mode::Sampler => format!("the sampler ({:?})", c.param),
    }
}

/// Variance of the velocity target vs t at one observation, for the critic's Boltzmann target
/// in the tanh latent. All candidates are drawn first and the critic is evaluated in one batch
/// (async readback: safe on WebGPU), then each estimator runs on the same candidates.
async fn rl_variance(
    t: &Trainer,
    obs: &[f32],
    cfg: &PlaygroundConfig,
) -> Result<VarianceCurve, SessionError> {
    const POINTS: usize = 8;
    const REPS: usize = 12;
    let ts: Vec<f32> = (1..=9).map(|i| i as f32 / 10.0).collect();
    let d = t.act_dim();
    let k = cfg.k.max(2);
    let path = Path::Linear;
    let mut r = rng::seeded(cfg.seed ^ 0x7a13_0000 ^ t.steps() as u64);
    // Data points: the policy's own latent samples (atanh of its actions).
    let acts = t.policy_samples(obs, POINTS, &mut r).await?;
    let y1: Vec<f32> = acts
        .iter()
        .map(|a| a.clamp(-0.999_999, 0.999_999).atanh())
        .collect();
    // Per t: POINTS points, each repeated REPS times with fresh candidates → n = POINTS * REPS rows.
    let n = POINTS * REPS;
    let mut all = Vec::new();
    for &tt in &ts {
        let c = path.coeffs(tt);
        let mut xt = Vec::with_capacity(n * d);
        for p in 0..POINTS {
            let noise = rng::normals(&mut r, d);
            let x: Vec<f32> = (0..d)
                .map(|j| c.alpha * y1[p * d + j] + c.beta * noise[j])
                .collect();
            for _ in 0..REPS {
                xt.extend_from_slice(&x);
            }
        }
        let tv = vec![tt; n];
        // The candidates the trainer itself draws (its proposal).
        let proposal = train_config(cfg).proposal;
        let cand = estimators::draw_candidates_from(&proposal, &path, &xt, &tv, n, k, d, &mut r);
        all.push((xt, tv, cand));
    }
    let latents: Vec<f32> = all
        .iter()
        .flat_map(|(_, _, c)| c.x1.iter().copied())
        .collect();
    let actions: Vec<f32> = latents.iter().map(|u| u.tanh()).collect();
    let (q, gq) = t.q_and_grads(obs, &actions).await?;
    let mut logp = vec![0.0; q.len()];
    let mut grad = vec![0.0; gq.len()];
    boltzmann_latent_log_prob_grad(&q, &gq, &latents, cfg.lambda, &mut logp, &mut grad)
        .map_err(|e| SessionError::Query(e.to_string()))?;
    let mut names = vec!["noise".to_string(), "grad".to_string(), "rfm".to_string()];
    if !names.contains(&cfg.estimator) {
        names.push(cfg.estimator.clone());
    }
    let mut by = std::collections::BTreeMap::new();
    for name in names {
        let est = Estimator::from_name(&name).map_err(|e| SessionError::Query(e.to_string()))?;
        let mut curve = Vec::with_capacity(ts.len());
        for (i, (xt, tv, cand)) in all.iter().enumerate() {
            let off = i * n * k;
            let b = PosteriorBatch {
                n,
                k,
                d,
                xt,
                t: tv,
                x0: &cand.x0,
                x1: &cand.x1,
                logp1: &logp[off..off + n * k],
                grad_logp1: &grad[off * d..(off + n * k) * d],
                log_iw: &cand.log_iw,
            };
            let e = estimators::estimate(&path, &est, &b)
                .map_err(|e| SessionError::Query(e.to_string()))?;
            let v = estimators::velocity_target(&path, tv, &e.mu0, &e.mu1, n, d);
            curve.push(trace_variance(&v, POINTS, REPS, d));
        }
        by.insert(name, curve);
    }
    Ok(VarianceCurve {
        t: ts,
        by_estimator: by,
    })
}

/// Mean over points of the trace of the unbiased variance over repeats; `v` is
/// `[points * reps * d]` with each point's repeats contiguous.
pub fn trace_variance(v: &[f32], points: usize, reps: usize, d: usize) -> f32 {
    let mut total = 0.0f64;
    for p in 0..points {
        for j in 0..d {
            let xs: Vec<f64> = (0..reps)
                .map(|r| v[(p * reps + r) * d + j] as f64)
                .collect();
            let mean = xs.iter().sum::<f64>() / reps as f64;
            total += xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (reps - 1) as f64;
        }
    }
    (total / points as f64) as f32
}

/// The trainer's config for an RL playground config: [`train_config`] with the agent and
/// estimator.
pub fn rl_config(cfg: &PlaygroundConfig) -> Result<TrainConfig, SessionError> {
    Ok(TrainConfig {
        agent: match cfg.agent {
            Agent::Rfm => crate::trainer::Agent::Rfm,
            Agent::Sac => crate::trainer::Agent::Sac,
        },
        estimator: Estimator::from_name(&cfg.estimator)
            .map_err(|e| SessionError::Query(e.to_string()))?,
        ..train_config(cfg)
    })
}

/// Random-action env steps before the page's RL runs start learning (the CLI's playground
/// preset uses 1,000): at the browser's few updates per second the learning, the density
/// panel and the curves start moving within seconds instead of minutes (docs/ui.md).
pub const PAGE_WARMUP_STEPS: usize = 200;

/// The trainer's config for a playground config: the playground preset with the page's values
/// and the page's shorter warm-up (never shorter than one batch).
pub fn train_config(cfg: &PlaygroundConfig) -> TrainConfig {
    TrainConfig {
        warmup_steps: PAGE_WARMUP_STEPS.max(cfg.batch),
        seed: cfg.seed,
        critic_hidden: cfg.hidden,
        actor_hidden: cfg.hidden,
        batch_size: cfg.batch,
        posterior_samples: cfg.k,
        candidates: cfg.candidates,
        ode_steps: cfg.ode_steps,
        solver: cfg.solver,
        lambda: cfg.lambda,
        actor_lr: cfg.actor_lr,
        critic_lr: cfg.critic_lr,
        ..TrainConfig::playground()
    }
}

/// Action-grid cell centres over `[-1, 1]^d` (`d` = 1 or 2), x fastest: `[bins^d * d]`.
pub fn action_grid(d: usize, bins: usize) -> Vec<f32> {
    let c = |i: usize| -1.0 + (i as f32 + 0.5) * 2.0 / bins as f32;
    if d == 1 {
        (0..bins).map(c).collect()
    } else {
        (0..bins * bins)
            .flat_map(|i| [c(i % bins), c(i / bins)])
            .collect()
    }
}

/// Counts of actions (`[n * d]`, d = 1 or 2) per cell of the `[-1, 1]^d` grid.
pub fn action_histogram(a: &[f32], d: usize, bins: usize) -> Vec<f32> {
    let cell =
        |x: f32| (((x + 1.0) * 0.5 * bins as f32) as isize).clamp(0, bins as isize - 1) as usize;
    let mut h = vec![0.0; if d == 1 { bins } else { bins * bins }];
    for p in a.chunks_exact(d) {
        if p.iter().any(|x| !x.is_finite()) {
            continue;
        }
        let i = if d == 1 {
            cell(p[0])
        } else {
            cell(p[1]) * bins + cell(p[0])
        };
        h[i] += 1.0;
    }
    h
}

/// `exp(log p / λ)`: the sampler's tempered target.
struct Tempered<'a> {
    inner: &'a Target,
    lambda: f32,
}

impl LogDensity for Tempered<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn log_prob_grad(&self, x: &[f32], logp: &mut [f32], grad: &mut [f32]) {
        self.inner.log_prob_grad(x, logp, grad);
        let s = 1.0 / self.lambda;
        logp.iter_mut().for_each(|v| *v *= s);
        grad.iter_mut().for_each(|v| *v *= s);
    }
}

/// The sampler trainer's config for a playground config.
pub fn sampler_config(cfg: &PlaygroundConfig) -> SamplerConfig {
    SamplerConfig {
        target: cfg.target.clone(),
        estimator: cfg.estimator.clone(),
        param: cfg.param,
        solver: cfg.solver,
        lambda: cfg.lambda,
        k: cfg.k,
        batch: cfg.batch,
        lr: cfg.actor_lr,
        hidden: cfg.hidden,
        ode_steps: cfg.ode_steps,
        seed: cfg.seed,
        ..SamplerConfig::default()
    }
}

/// Normalised masses of `exp(log p / λ)` at the cell centres of `grid`.
pub fn target_masses(target: &dyn LogDensity, grid: &Grid2d, lambda: f32) -> Vec<f32> {
    let c = grid.centres();
    let m = c.len() / 2;
    let mut logp = vec![0.0; m];
    let mut grad = vec![0.0; m * 2];
    target.log_prob_grad(&c, &mut logp, &mut grad);
    softmax_scaled(&logp, 1.0 / lambda)
}

/// `softmax(scale · v)` computed stably in f64.
pub fn softmax_scaled(v: &[f32], scale: f32) -> Vec<f32> {
    let max = v
        .iter()
        .map(|&x| x as f64 * scale as f64)
        .filter(|x| x.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = v
        .iter()
        .map(|&x| {
            let y = x as f64 * scale as f64 - max;
            if y.is_finite() { y.exp() } else { 0.0 }
        })
        .collect();
    let z: f64 = e.iter().sum();
    e.iter().map(|&x| (x / z) as f32).collect()
}

/// Counts of 2-D `samples` per cell of `grid` (points outside are dropped).
pub fn histogram(samples: &[f32], grid: &Grid2d) -> Vec<f32> {
    let mut h = vec![0.0; grid.bins * grid.bins];
    for p in samples.chunks_exact(2) {
        if let Some(c) = grid.cell(p) {
            h[c] += 1.0;
        }
    }
    h
}

/// `KL(p ‖ uniform)` over `p`'s cells: `Σ p ln(p · cells)`.
pub fn kl_uniform(p: &[f32]) -> f32 {
    let cells = p.len() as f64;
    p.iter()
        .filter(|&&pi| pi > 0.0)
        .map(|&pi| pi as f64 * (pi as f64 * cells).ln())
        .sum::<f64>() as f32
}

/// `KL(p ‖ q̃)` where `q̃ = (counts + a) / (n + a · cells)`.
pub fn kl_smoothed(p: &[f32], counts: &[f32], n: usize, a: f32) -> f32 {
    let denom = n as f64 + a as f64 * counts.len() as f64;
    p.iter()
        .zip(counts)
        .filter(|(pi, _)| **pi > 0.0)
        .map(|(&pi, &ci)| {
            let q = (ci as f64 + a as f64) / denom;
            pi as f64 * (pi as f64 / q).ln()
        })
        .sum::<f64>() as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;

    #[test]
    fn kl_of_exact_histogram_is_small_and_of_wrong_one_large() {
        let p = vec![0.25f32; 4];
        assert!(kl_smoothed(&p, &[250.0; 4], 1000, 0.5) < 1e-6);
        // All mass in one cell: KL = Σ 0.25 ln(0.25/q) with q = 0.5/1002 for three cells.
        let kl = kl_smoothed(&p, &[1000.0, 0.0, 0.0, 0.0], 1000, 0.5);
        let q0 = 1000.5 / 1002.0f64;
        let q = 0.5 / 1002.0f64;
        let expect = 0.25 * (0.25 / q0).ln() + 0.75 * (0.25 / q).ln();
        assert!((kl as f64 - expect).abs() < 1e-5, "{kl} vs {expect}");
    }

    #[test]
    fn kl_to_uniform_matches_hand_computation() {
        assert!(kl_uniform(&[0.25; 4]).abs() < 1e-7);
        // [1/2, 1/2, 0, 0] against 1/4 each: ln 2.
        let kl = kl_uniform(&[0.5, 0.5, 0.0, 0.0]);
        assert!((kl - std::f32::consts::LN_2).abs() < 1e-6, "{kl}");
        // The smoothed KL of an exactly uniform histogram agrees.
        let p = [0.7, 0.2, 0.1, 0.0];
        let k2 = kl_smoothed(&p, &[250.0; 4], 1000, 0.5);
        assert!((kl_uniform(&p) - k2).abs() < 1e-6);
    }

    #[test]
    fn softmax_is_normalised_and_stable() {
        let s = softmax_scaled(&[1000.0, 1000.0, f32::NEG_INFINITY], 10.0);
        assert_eq!(s, vec![0.5, 0.5, 0.0]);
    }

    #[test]
    fn sampler_session_trains_and_density_kl_falls() {
        let cfg = PlaygroundConfig {
            mode: Mode::Sampler,
            lambda: 1.0,
            k: 32,
            batch: 128,
            ..Default::default()
        };
        let mut s = Session::new(cfg, ComputeDevice::cpu()).unwrap();
        let d0 = pollster::block_on(s.density(Some(2000), None)).unwrap();
        let sum: f32 = d0.target.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4);
        let b = pollster::block_on(s.step(150));
        assert_eq!(b.fault, None);
        assert_eq!(b.points.len(), 150);
        let d1 = pollster::block_on(s.density(Some(2000), None)).unwrap();
        assert!(d1.kl < 0.7 * d0.kl, "KL {} -> {}", d0.kl, d1.kl);
    }

    #[test]
    fn action_grid_and_histogram_agree() {
        let g = action_grid(2, 4);
        assert_eq!(&g[..4], &[-0.75, -0.75, -0.25, -0.75]);
        let h = action_histogram(&g, 2, 4);
        assert!(h.iter().all(|&c| c == 1.0), "{h:?}");
        let h1 = action_histogram(&[-1.0, 1.0, 0.0, f32::NAN], 1, 4);
        assert_eq!(h1, vec![1.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn weights_round_trip_and_mismatch_is_refused() {
        let cfg = PlaygroundConfig {
            k: 8,
            batch: 16,
            ..Default::default()
        };
        let mut s = Session::new(cfg.clone(), ComputeDevice::cpu()).unwrap();
        pollster::block_on(s.step(1100)); // past the warm-up: the networks have moved
        let bytes = pollster::block_on(s.save_weights()).unwrap();
        let q_state = Some(vec![0.5, -0.5]);
        let before = pollster::block_on(s.density(Some(200), q_state.clone()))
            .unwrap()
            .target;
        // A fresh session differs; after loading it computes the same critic values.
        let mut fresh = Session::new(cfg.clone(), ComputeDevice::cpu()).unwrap();
        let other = pollster::block_on(fresh.density(Some(200), q_state.clone()))
            .unwrap()
            .target;
        assert_ne!(before, other);
        fresh.load_weights(&bytes).unwrap();
        let after = pollster::block_on(fresh.density(Some(200), q_state))
            .unwrap()
            .target;
        assert_eq!(before, after);
        // Different width: refused, nothing changes.
        let mut wide =
            Session::new(PlaygroundConfig { hidden: 32, ..cfg }, ComputeDevice::cpu()).unwrap();
        let e = wide.load_weights(&bytes).unwrap_err().to_string();
        assert!(e.contains("hidden 64") && e.contains("hidden 32"), "{e}");
        let e = wide.load_weights(b"{not json").unwrap_err().to_string();
        assert!(e.contains("not a weights file"), "{e}");
    }

    #[test]
    fn sampler_weights_round_trip() {
        let cfg = PlaygroundConfig {
            mode: Mode::Sampler,
            lambda: 1.0,
            k: 8,
            batch: 32,
            ..Default::default()
        };
        let mut s = Session::new(cfg.clone(), ComputeDevice::cpu()).unwrap();
        pollster::block_on(s.step(5));
        let bytes = pollster::block_on(s.save_weights()).unwrap();
        let mut fresh = Session::new(cfg, ComputeDevice::cpu()).unwrap();
        fresh.load_weights(&bytes).unwrap();
        let a = pollster::block_on(s.paths(3, None)).unwrap();
        let b = pollster::block_on(fresh.paths(3, None)).unwrap();
        // Same weights; the paths' noise depends on the step count, so compare the ends' shape
        // and that the networks agree on identical noise via a second save.
        assert_eq!(a.paths.len(), b.paths.len());
        let again = pollster::block_on(fresh.save_weights()).unwrap();
        let f1: WeightsFile = serde_json::from_slice(&bytes).unwrap();
        let f2: WeightsFile = serde_json::from_slice(&again).unwrap();
        assert_eq!(
            f1.tensors.iter().map(|t| &t.data).collect::<Vec<_>>(),
            f2.tensors.iter().map(|t| &t.data).collect::<Vec<_>>()
        );
    }

    #[test]
    fn trace_variance_matches_hand_computation() {
        // One point, 3 reps, d = 2: var([1,2,3]) = 1, var([0,0,3]) = 3 → trace 4.
        let v = [1.0, 0.0, 2.0, 0.0, 3.0, 3.0];
        assert!((trace_variance(&v, 1, 3, 2) - 4.0).abs() < 1e-6);
    }

    #[test]
    fn rl_session_on_multigoal_gives_all_views() {
        let cfg = PlaygroundConfig {
            k: 8,
            batch: 32,
            ..Default::default()
        };
        let mut s = Session::new(cfg, ComputeDevice::cpu()).unwrap();
        let b = pollster::block_on(s.step(40));
        assert_eq!(b.fault, None);
        assert_eq!(b.step, 40);
        assert!(matches!(
            b.env,
            Some(crate::envs::EnvSnapshot::Multigoal(_))
        ));
        let d = pollster::block_on(s.density(Some(500), Some(vec![0.0, 0.0]))).unwrap();
        assert_eq!(d.grid.dims, 2);
        assert_eq!(d.policy.len(), GRID_2D * GRID_2D);
        assert!((d.target.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert!((d.policy.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert!(d.kl.is_finite() && d.kl >= 0.0);
        let p = pollster::block_on(s.paths(5, None)).unwrap();
        assert_eq!(p.paths.len(), 5);
        assert_eq!(p.t.len(), 11);
        assert!(p.paths.iter().flatten().flatten().all(|x| x.abs() <= 1.0));
        let v = pollster::block_on(s.variance(None)).unwrap();
        assert_eq!(v.by_estimator.len(), 3);
        assert!(
            v.by_estimator
                .values()
                .flatten()
                .all(|x| x.is_finite() && *x >= 0.0)
        );
    }

    #[test]
    fn rl_policy_follows_its_boltzmann_target_on_multigoal() {
        // The page's default experiment. Measured natively: at 500 env steps (300 updates) the
        // policy's KL is ~0.5 × uniform actions' KL; with the released code's prior proposal
        // (K = 16) the flow instead piles ~50 % of its samples into the four corner cells and
        // scores ~1.4 × uniform.
        let mut s = Session::new(PlaygroundConfig::default(), ComputeDevice::cpu()).unwrap();
        let b = pollster::block_on(s.step(500));
        assert_eq!(b.fault, None);
        let d = pollster::block_on(s.density(None, Some(vec![0.0, 0.0]))).unwrap();
        let n = GRID_2D;
        let corners: f32 = [0, n - 1, n * (n - 1), n * n - 1]
            .iter()
            .map(|&c| d.policy[c])
            .sum();
        assert!(corners < 0.02, "corner cells hold {corners}");
        assert!(
            d.kl_uniform > 1.0,
            "the target is still flat: {}",
            d.kl_uniform
        );
        assert!(
            d.kl < 0.8 * d.kl_uniform,
            "KL {} vs uniform {}",
            d.kl,
            d.kl_uniform
        );
    }

    fn small_rl() -> PlaygroundConfig {
        PlaygroundConfig {
            k: 8,
            batch: 16,
            ..Default::default()
        }
    }

    fn tensors_of(bytes: &[u8]) -> Vec<Vec<f32>> {
        let f: WeightsFile = serde_json::from_slice(bytes).unwrap();
        f.tensors.into_iter().map(|t| t.data).collect()
    }

    /// Inject `kind`, step until the session pauses and check it restored the last good
    /// weights; then training goes on.
    fn fault_round_trip(s: &mut Session, kind: FaultKind) -> String {
        let good = pollster::block_on(s.save_weights()).unwrap();
        let at = s.steps();
        s.inject_fault(kind).unwrap();
        let b = pollster::block_on(s.step(2 * ESS_WINDOW));
        let msg = b
            .fault
            .clone()
            .unwrap_or_else(|| panic!("{kind:?}: no fault"));
        assert_eq!(b.fault_kind, Some(kind), "{kind:?}: {msg}");
        assert!(!b.device_lost);
        assert!(msg.contains(&format!("step {at}")), "{msg}");
        assert!(msg.contains("press play"), "{msg}");
        assert!(
            b.points
                .iter()
                .all(|p| p.critic_loss.is_none_or(|v| v.is_finite()))
        );
        let restored = pollster::block_on(s.save_weights()).unwrap();
        assert_eq!(tensors_of(&restored), tensors_of(&good), "{kind:?}");
        // The user presses play again: training resumes from the restored weights.
        let again = pollster::block_on(s.step(5));
        assert_eq!(again.fault, None, "{kind:?} after restore");
        assert!(again.step > b.step);
        msg
    }

    #[test]
    fn rl_faults_pause_restore_the_last_good_weights_and_resume() {
        let mut s = Session::new(small_rl(), ComputeDevice::cpu()).unwrap();
        let b = pollster::block_on(s.step(1010)); // past the warm-up: updates and ESS readings
        assert_eq!(b.fault, None);
        let nan_q = fault_round_trip(&mut s, FaultKind::NanQ);
        assert!(nan_q.contains("Q values became NaN"), "{nan_q}");
        let nan_w = fault_round_trip(&mut s, FaultKind::NanWeights);
        assert!(
            nan_w.contains("a weight of the actor network became NaN"),
            "{nan_w}"
        );
        let ess = fault_round_trip(&mut s, FaultKind::EssCollapse);
        assert!(ess.contains("effective sample size collapsed"), "{ess}");
        let boom = fault_round_trip(&mut s, FaultKind::ExplodingTargets);
        assert!(
            boom.contains("exploded") || boom.contains("blowing up"),
            "{boom}"
        );
    }

    #[test]
    fn sampler_faults_pause_and_restore() {
        let cfg = PlaygroundConfig {
            mode: Mode::Sampler,
            lambda: 1.0,
            k: 8,
            batch: 32,
            ..Default::default()
        };
        let mut s = Session::new(cfg, ComputeDevice::cpu()).unwrap();
        pollster::block_on(s.step(3));
        for kind in [FaultKind::NanWeights, FaultKind::EssCollapse] {
            fault_round_trip(&mut s, kind);
        }
        for kind in [FaultKind::NanQ, FaultKind::ExplodingTargets] {
            let e = s.inject_fault(kind).unwrap_err().to_string();
            assert!(e.contains("RL mode"), "{e}");
        }
    }

    #[test]
    fn a_changed_setting_resumes_from_the_last_good_weights_and_step() {
        let mut s = Session::new(small_rl(), ComputeDevice::cpu()).unwrap();
        pollster::block_on(s.step(1005));
        s.inject_fault(FaultKind::NanWeights).unwrap();
        let b = pollster::block_on(s.step(5));
        assert!(b.fault.is_some());
        let good = pollster::block_on(s.save_weights()).unwrap();
        // A smaller learning rate: a new experiment that carries the weights and step count.
        let cfg = PlaygroundConfig {
            actor_lr: 1e-4,
            ..small_rl()
        };
        let mut next = Session::new(cfg, ComputeDevice::cpu()).unwrap();
        assert_eq!(next.resume_from(&good).unwrap(), 1005);
        assert_eq!(next.steps(), 1005);
        let b = pollster::block_on(next.step(3));
        assert_eq!((b.fault, b.step), (None, 1008));
        // A file with NaN weights (JSON null) is refused and changes nothing.
        let mut f: WeightsFile = serde_json::from_slice(&good).unwrap();
        f.tensors[0].data[0] = f32::NAN;
        let e = next
            .resume_from(&serde_json::to_vec(&f).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot load these weights"), "{e}");
        assert_eq!(next.steps(), 1008);
    }

    #[test]
    fn a_lost_device_falls_back_to_the_cpu_from_the_last_snapshot() {
        let mut s = Session::new(small_rl(), ComputeDevice::cpu()).unwrap();
        pollster::block_on(s.step(1003));
        let good = pollster::block_on(s.save_weights()).unwrap();
        s.inject_fault(FaultKind::DeviceLost).unwrap();
        let b = pollster::block_on(s.step(5));
        assert!(b.device_lost);
        assert_eq!(b.fault_kind, Some(FaultKind::DeviceLost));
        assert!(b.fault.unwrap().contains("step 1003"));
        assert_eq!(s.fall_back_to_cpu().unwrap(), 1003);
        assert_eq!(s.device().kind(), crate::device::BackendKind::Cpu);
        let now = pollster::block_on(s.save_weights()).unwrap();
        assert_eq!(tensors_of(&now), tensors_of(&good));
        let b = pollster::block_on(s.step(4));
        assert_eq!((b.fault, b.step, b.device_lost), (None, 1007, false));
    }

    /// Bit-for-bit comparison of metric points (NaN-safe).
    fn bits(points: &[MetricPoint]) -> Vec<[u64; 6]> {
        let f = |v: Option<f32>| v.map_or(u64::MAX, |x| x.to_bits() as u64);
        let d = |v: Option<f64>| v.map_or(u64::MAX, f64::to_bits);
        points
            .iter()
            .map(|p| {
                [
                    p.step as u64,
                    d(p.episode_return),
                    d(p.eval_return),
                    f(p.critic_loss),
                    f(p.actor_loss),
                    f(p.ess),
                ]
            })
            .collect()
    }

    #[test]
    fn same_seed_and_config_replay_bit_for_bit_on_the_cpu() {
        let sampler = PlaygroundConfig {
            mode: Mode::Sampler,
            lambda: 1.0,
            k: 8,
            batch: 32,
            ..Default::default()
        };
        for (cfg, n) in [(small_rl(), 1040), (sampler, 40)] {
            let run = || {
                let mut s = Session::new(cfg.clone(), ComputeDevice::cpu()).unwrap();
                let b = pollster::block_on(s.step(n));
                assert_eq!(b.fault, None);
                let w = pollster::block_on(s.save_weights()).unwrap();
                (bits(&b.points), tensors_of(&w))
            };
            let (a, wa) = run();
            let (b, wb) = run();
            assert!(!a.is_empty());
            assert_eq!(a, b, "{:?}", cfg.mode);
            let same = wa
                .iter()
                .flatten()
                .zip(wb.iter().flatten())
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{:?}: weights differ", cfg.mode);
        }
    }

    #[test]
    fn rl_refuses_sampler_only_estimators() {
        let cfg = PlaygroundConfig {
            estimator: "eta:0.5".into(),
            ..Default::default()
        };
        let e = Session::new(cfg, ComputeDevice::cpu()).err().unwrap();
        assert!(e.to_string().contains("sampler mode"), "{e}");
    }
}
