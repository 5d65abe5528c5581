//! Checkpoints in and out of a session ([`crate::checkpoint`] is the file format): save the
//! current weights, open a checkpoint as a new session (its own spec, weights and step count),
//! resume a changed experiment from compatible weights, and fall back to the CPU after a lost
//! device.

use super::seeds::Seeds;
use super::{Session, SessionError};
use crate::checkpoint::Checkpoint;
use crate::device::ComputeDevice;
use crate::spec::{ExperimentSpec, Mode};
use crate::trainer::NamedTensor;

impl Session {
    /// The current weights as a checkpoint file's bytes.
    pub async fn save_weights(&self) -> Result<Vec<u8>, SessionError> {
        let tensors = self.export().await?;
        Ok(Checkpoint::new(self.cfg.clone(), self.steps(), tensors).to_bytes())
    }

    /// A session that continues the experiment in a checkpoint file (a page's "Save weights",
    /// an autosave or `rfm train --save`): its spec, its weights, its step count. Training goes
    /// on with a fresh optimiser (and, in RL, an empty replay buffer refilled by the warm-up).
    pub fn open(bytes: &[u8], device: ComputeDevice) -> Result<Self, SessionError> {
        let ck = Checkpoint::from_bytes(bytes)?;
        let mut s = Session::new(ck.spec, device)?;
        s.set_weights(ck.tensors, ck.steps)?;
        Ok(s)
    }

    /// Load compatible weights (same mode, task, agent, parameterisation, sizes and number of
    /// seeds) into this session, which keeps its own spec, and continue at the file's step
    /// count: the last good weights carried into a changed setting. Returns that step count; on a mismatch nothing
    /// changes and the error says what differs.
    pub fn resume_from(&mut self, bytes: &[u8]) -> Result<usize, SessionError> {
        let ck = Checkpoint::from_bytes(bytes)?;
        let (a, b) = (&ck.spec, &self.cfg);
        if !same_networks(a, b) {
            return Err(SessionError::Query(format!(
                "cannot load these weights: they are for {}, this experiment is {}; switch to the same settings first",
                a.describe(),
                b.describe()
            )));
        }
        self.set_weights(ck.tensors, ck.steps)?;
        Ok(ck.steps)
    }

    /// A fresh trainer with `tensors` as its weights, continuing at `steps`; on a mismatch
    /// nothing changes.
    pub(crate) fn set_weights(
        &mut self,
        tensors: Vec<NamedTensor>,
        steps: usize,
    ) -> Result<(), SessionError> {
        let fresh = Seeds::build(&self.cfg, &self.device)?;
        let loaded = fresh
            .with_weights(tensors.clone())
            .map_err(|m| SessionError::Query(format!("cannot load these weights: {m}")))?;
        self.inner = Some(loaded);
        self.step_offset = steps;
        let watch_ess = self.guard.watch_ess;
        self.guard = Default::default();
        self.guard.watch_ess = watch_ess;
        self.guard.set_snapshot(steps, tensors);
        self.injected = Default::default();
        Ok(())
    }

    /// Rebuild the experiment on the CPU from the last snapshot (weights + step count), e.g.
    /// after the WebGPU device was lost. RL starts a fresh replay buffer (refilled by the
    /// warm-up); the optimiser starts afresh. Returns the step count it continues from.
    pub fn fall_back_to_cpu(&mut self) -> Result<usize, SessionError> {
        let (steps, tensors) = self.guard.snapshot().cloned().unwrap_or((0, Vec::new()));
        let mut fresh = Session::new(self.cfg.clone(), ComputeDevice::cpu())?;
        if !tensors.is_empty() {
            fresh.set_weights(tensors, steps)?;
        }
        *self = fresh;
        Ok(steps)
    }
}

/// Whether two specs build networks of the same shapes.
fn same_networks(a: &ExperimentSpec, b: &ExperimentSpec) -> bool {
    a.mode == b.mode
        && a.param == b.param
        && a.hidden == b.hidden
        && a.emb_width == b.emb_width
        && match b.mode {
            Mode::Rl => a.env == b.env && a.agent == b.agent,
            Mode::Sampler => true,
        }
}
