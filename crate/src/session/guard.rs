//! The fault guard: what counts as a fault, the last good weights, and the messages.
//!
//! Faults pause the session with a plain-language message ([`super::StepBatch::fault`]): a
//! NaN/inf loss, action or weight, NaN/inf or exploding Q values, exploding TD targets (an RL
//! loss above [`LOSS_LIMIT`]) and a collapsed estimator (mean ESS of the last [`ESS_WINDOW`]
//! updates at most [`ESS_COLLAPSE`]). The session keeps a snapshot of the last good weights
//! (taken after every healthy batch, checked finite) and restores it on a fault, so the user
//! can change a setting and go on. A failing device (WebGPU lost) is reported as
//! `device_lost`; [`super::Session::fall_back_to_cpu`] rebuilds the experiment on the CPU from
//! the same snapshot.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::seeds::{owner, seed_label};
use super::views::action_grid;
use super::{Inner, MetricPoint, Session, SessionError};
use crate::device::ComputeDevice;
use crate::spec::{Agent, ExperimentSpec, Mode};
use crate::trainer::NamedTensor;

/// The kinds of fault the session detects (and the tests inject, see [`super::inject`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
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

/// The guard's state: the last good weights and the ESS window.
pub(crate) struct Guard {
    /// Whether a collapsed ESS pauses training (the page: yes, to explain it; `rfm train`: no,
    /// a sharp target at a small λ legitimately runs at ESS ≈ 1).
    pub(crate) watch_ess: bool,
    /// The last good weights (checked finite) and the total step count they belong to.
    snapshot: Option<(usize, Vec<NamedTensor>)>,
    /// Recent ESS readings of each seed (the collapse detector's windows).
    ess_recent: Vec<VecDeque<f32>>,
}

impl Default for Guard {
    fn default() -> Self {
        Self {
            watch_ess: true,
            snapshot: None,
            ess_recent: Vec::new(),
        }
    }
}

impl Guard {
    pub(crate) fn has_snapshot(&self) -> bool {
        self.snapshot.is_some()
    }

    pub(crate) fn snapshot(&self) -> Option<&(usize, Vec<NamedTensor>)> {
        self.snapshot.as_ref()
    }

    pub(crate) fn set_snapshot(&mut self, steps: usize, tensors: Vec<NamedTensor>) {
        self.snapshot = Some((steps, tensors));
    }

    pub(crate) fn clear_window(&mut self) {
        self.ess_recent.clear();
    }

    /// Losses and ESS of one step of one seed: exploding or collapsed → a fault (the message
    /// names the seed when there are several).
    pub(crate) fn check_point(
        &mut self,
        cfg: &ExperimentSpec,
        p: &MetricPoint,
    ) -> Result<(), (FaultKind, String)> {
        self.check_seed_point(cfg, p).map_err(|(k, why)| {
            if cfg.seeds > 1 {
                (k, format!("in {}, {why}", seed_label(cfg, p.seed_index)))
            } else {
                (k, why)
            }
        })
    }

    fn check_seed_point(
        &mut self,
        cfg: &ExperimentSpec,
        p: &MetricPoint,
    ) -> Result<(), (FaultKind, String)> {
        for (what, v) in [("critic", p.critic_loss), ("actor", p.actor_loss)] {
            let Some(v) = v else { continue };
            if !v.is_finite() {
                return Err((
                    FaultKind::NanQ,
                    format!("the {what} loss became {v} at step {}", p.step),
                ));
            }
            if v > LOSS_LIMIT && cfg.mode == Mode::Rl {
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
            self.watch_ess && cfg.k >= 4 && (cfg.mode == Mode::Sampler || cfg.agent == Agent::Rfm);
        if let Some(e) = p.ess.filter(|_| watch_ess) {
            if self.ess_recent.len() <= p.seed_index {
                self.ess_recent.resize_with(p.seed_index + 1, VecDeque::new);
            }
            let recent = &mut self.ess_recent[p.seed_index];
            if recent.len() == ESS_WINDOW {
                recent.pop_front();
            }
            recent.push_back(e);
            let mean = recent.iter().sum::<f32>() / recent.len() as f32;
            if recent.len() == ESS_WINDOW && (mean.is_nan() || mean <= ESS_COLLAPSE) {
                return Err((
                    FaultKind::EssCollapse,
                    format!(
                        "the estimator's effective sample size collapsed to {mean:.2} of {} samples by step {} (one sample carries all the weight, so the targets are noise)",
                        cfg.k, p.step
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The batch's fault message (with the snapshot's step and advice) and kind.
    pub(crate) fn describe(
        &self,
        fault: Option<(FaultKind, String)>,
        device_lost: bool,
        device: &ComputeDevice,
    ) -> (Option<FaultKind>, Option<String>) {
        let at = self.snapshot.as_ref().map_or(0, |s| s.0);
        match fault {
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
                    device.info().adapter
                )),
            ),
            None => (None, None),
        }
    }
}

/// A device failure (readback failed, WebGPU gone) rather than a numerical fault.
pub(crate) fn is_device_error(e: &SessionError) -> bool {
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

impl Session {
    /// A step the trainer refused: NaN weights (poisoned before the step) or a NaN/inf value
    /// met during the update.
    pub(crate) async fn classify(&self, e: SessionError) -> (FaultKind, String) {
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
    pub(crate) async fn check_weights(&self) -> Result<Vec<NamedTensor>, (FaultKind, String)> {
        let tensors = self
            .export()
            .await
            .map_err(|e| (FaultKind::NanWeights, e.to_string()))?;
        for t in &tensors {
            if let Some(v) = t.data.iter().find(|v| !v.is_finite()) {
                let (seed, net) = owner(&t.name);
                let whose = if self.cfg.seeds > 1 {
                    format!("{}'s ", seed_label(&self.cfg, seed))
                } else {
                    "the ".to_string()
                };
                return Err((
                    FaultKind::NanWeights,
                    format!(
                        "a weight of {whose}{net} network became {v} at step {}",
                        self.steps()
                    ),
                ));
            }
        }
        Ok(tensors)
    }

    /// RL: every seed's critic's Q at its current observation must be finite and within
    /// ±[`Q_LIMIT`].
    pub(crate) async fn check_q(&self) -> Result<(), (FaultKind, String)> {
        let at = self.steps();
        for (i, inner) in self.seeds().iter().enumerate() {
            let Inner::Rl(t) = inner else {
                return Ok(());
            };
            let centres = action_grid(t.act_dim(), 3);
            let q = t
                .q_values(t.current_obs(), &centres)
                .await
                .map_err(|e| (FaultKind::NanQ, e.to_string()))?;
            let whose = if self.cfg.seeds > 1 {
                format!("{}'s", seed_label(&self.cfg, i))
            } else {
                "the".to_string()
            };
            if let Some(v) = q.iter().find(|v| !v.is_finite()) {
                return Err((
                    FaultKind::NanQ,
                    format!("{whose} critic's Q values became {v} at step {at}"),
                ));
            }
            if let Some(v) = q.iter().find(|v| v.abs() > Q_LIMIT) {
                return Err((
                    FaultKind::ExplodingTargets,
                    format!("{whose} critic's Q values exploded to {v:.3e} at step {at}"),
                ));
            }
        }
        Ok(())
    }

    /// Keep the current weights as the last good snapshot, unless one is not finite.
    pub(crate) async fn take_snapshot(&mut self) -> Result<(), (FaultKind, String)> {
        let tensors = self.check_weights().await?;
        self.guard.set_snapshot(self.steps(), tensors);
        Ok(())
    }

    /// Put the snapshot's weights back into the running trainer (replay, counters and the env
    /// stay as they are).
    pub(crate) fn restore_snapshot(&mut self) {
        let Some((_, tensors)) = self.guard.snapshot().cloned() else {
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
}
