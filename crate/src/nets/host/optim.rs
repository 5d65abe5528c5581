//! The optimiser pieces of the host training steps ([`super::actor`], the critic step in
//! [`super::critic`]): the global gradient norm, the global-norm clip of
//! `trainer::clip_global_norm`, and Adam with burn's defaults and arithmetic.

/// `sqrt(Σ g²)` over every gradient.
pub fn global_norm(grads: &[Vec<f32>]) -> f32 {
    grads
        .iter()
        .flatten()
        .map(|&v| (v as f64).powi(2))
        .sum::<f64>()
        .sqrt() as f32
}

/// The factor the global-norm clip multiplies every gradient by: `max_norm / (norm + 1e-6)` when
/// `norm` (their global norm) is finite and above `max_norm`, else 1 (a non-finite norm is the
/// caller's to reject). Every clip in the crate uses it: the host steps here, the burn seam's
/// `trainer::clip_global_norm`, and `nets::fused::FusedAdam`, which applies it inside Adam.
pub fn clip_scale(norm: f32, max_norm: f32) -> f32 {
    if norm.is_finite() && norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    }
}

/// Scale the gradients by [`clip_scale`].
pub fn clip(grads: &mut [Vec<f32>], norm: f32, max_norm: f32) {
    let scale = clip_scale(norm, max_norm);
    if scale != 1.0 {
        grads.iter_mut().flatten().for_each(|v| *v *= scale);
    }
}

/// Adam with burn's defaults (`β1 = 0.9`, `β2 = 0.999`, `ε = 1e-5`, no weight decay) and
/// burn's arithmetic: `m ← β1 m + (1−β1) g`, `v ← β2 v + (1−β2) g²`,
/// `p ← p − lr · m·c / (√v + ε·√(1−β2^t))` with `c = √(1−β2^t) / (1−β1^t)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostAdam {
    /// Steps taken.
    pub time: i32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl HostAdam {
    pub const BETA_1: f32 = 0.9;
    pub const BETA_2: f32 = 0.999;
    pub const EPSILON: f32 = 1e-5;

    /// One step on `params` (the same order and lengths as `grads`).
    pub fn step(&mut self, params: Vec<&mut Vec<f32>>, grads: &[Vec<f32>], lr: f64) {
        assert_eq!(
            params.len(),
            grads.len(),
            "Adam: parameter and gradient counts"
        );
        if self.m.len() != grads.len() {
            self.m = grads.iter().map(|g| vec![0.0; g.len()]).collect();
            self.v = self.m.clone();
            self.time = 0;
        }
        self.time += 1;
        let (b1, b2) = (Self::BETA_1, Self::BETA_2);
        let bc2 = (1.0 - b2.powi(self.time)).sqrt();
        let factor = bc2 / (1.0 - b1.powi(self.time));
        let eps = Self::EPSILON * bc2;
        let lr = lr as f32;
        for (((p, g), m), v) in params
            .into_iter()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            assert_eq!(p.len(), g.len(), "Adam: parameter and gradient lengths");
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = *m * b1 + g * (1.0 - b1);
                *v = *v * b2 + g * g * (1.0 - b2);
                *p -= (*m * factor / (v.sqrt() + eps)) * lr;
            }
        }
    }
}
