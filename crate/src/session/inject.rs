//! Test hook: inject each fault the guard detects (NaN critic or policy weights, ESS readings
//! of 1, critic weights scaled by 1000 so the TD loss explodes, or a lost device). The native
//! tests and the browser's reliability tests call it through [`Session::inject_fault`]; it
//! changes nothing until the next [`Session::step`].

use super::guard::ESS_WINDOW;
use super::{FaultKind, Inner, Session, SessionError};

/// Faults waiting for the next step.
#[derive(Default)]
pub(crate) struct Injected {
    pub(crate) pending: Option<FaultKind>,
    /// ESS readings still to be replaced by 1.0 (a simulated collapse).
    pub(crate) ess_ones: usize,
    pub(crate) device_lost: bool,
}

impl Session {
    /// Make the next [`Session::step`] meet `kind`. The Q faults need a critic (RL mode). The
    /// session must detect it, pause with a message and restore the last good weights (a lost
    /// device instead asks for [`Session::fall_back_to_cpu`]).
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

    pub(crate) async fn apply_injection(
        &mut self,
        kind: FaultKind,
    ) -> Result<(), (FaultKind, String)> {
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
}
