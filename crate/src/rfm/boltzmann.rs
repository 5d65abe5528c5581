//! The Boltzmann policy target in the tanh latent of a bounded action space:
//! `log p1(u) = Q(s, tanh u)/λ + Σ_j log sech²(u_j)` and its gradient, from a critic's `Q` and
//! `∇ₐQ` ([`boltzmann_latent_log_prob_grad`]) or from any action-space density
//! ([`TanhLatent`]).

use super::targets::{LogDensity, TargetError, assert_shapes, check_finite, check_len, log_sech2};

fn check_lambda(lambda: f32) -> Result<(), TargetError> {
    if lambda.is_finite() && lambda > 0.0 {
        Ok(())
    } else {
        Err(TargetError::BadLambda(lambda))
    }
}

/// The Boltzmann policy target in the tanh latent, for `m` latent points `u` (`[m * d]`):
///
/// ```text
/// log p1(u) = Q(s, tanh u)/λ + Σ_j log sech²(u_j)
/// ∇_u       = (∇_a Q ⊙ (1 - tanh² u))/λ - 2 tanh(u)
/// ```
///
/// `q` (`[m]`) and `grad_q` (`[m * d]`) are `Q` and `∇_a Q` at `a = tanh(u)` (from a critic).
/// Writes `logp` (`[m]`) and `grad` (`[m * d]`). Errors on `λ ≤ 0`, non-finite values or
/// mismatched lengths.
pub fn boltzmann_latent_log_prob_grad(
    q: &[f32],
    grad_q: &[f32],
    u: &[f32],
    lambda: f32,
    logp: &mut [f32],
    grad: &mut [f32],
) -> Result<(), TargetError> {
    check_lambda(lambda)?;
    let m = q.len();
    check_len("logp [m]", logp, m)?;
    if m == 0 {
        return if u.is_empty() && grad_q.is_empty() && grad.is_empty() {
            Ok(())
        } else {
            Err(TargetError::Shape {
                what: "u [m*d] with m = 0",
                expected: 0,
                got: u.len(),
            })
        };
    }
    if !u.len().is_multiple_of(m) || u.is_empty() {
        return Err(TargetError::Shape {
            what: "u [m*d]",
            expected: m * (u.len() / m).max(1),
            got: u.len(),
        });
    }
    let d = u.len() / m;
    check_len("grad_q [m*d]", grad_q, m * d)?;
    check_len("grad [m*d]", grad, m * d)?;
    check_finite("q", q)?;
    check_finite("grad_q", grad_q)?;
    check_finite("u", u)?;
    let inv_l = 1.0 / lambda as f64;
    for i in 0..m {
        let mut lp = q[i] as f64 * inv_l;
        for j in 0..d {
            let y = u[i * d + j] as f64;
            let ls = log_sech2(y);
            lp += ls;
            // 1 - tanh² = sech², taken from its log so it stays accurate where tanh saturates.
            grad[i * d + j] = (grad_q[i * d + j] as f64 * ls.exp() * inv_l - 2.0 * y.tanh()) as f32;
        }
        logp[i] = lp as f32;
    }
    Ok(())
}

/// Any action-space log density `Q(a)` (e.g. a quadratic), seen as the latent Boltzmann
/// target `Q(tanh u)/λ + Σ log sech²(u)` of [`boltzmann_latent_log_prob_grad`].
#[derive(Clone, Debug)]
pub struct TanhLatent<T> {
    /// `Q` on actions `a ∈ (-1, 1)^d`.
    pub q: T,
    /// Temperature `λ > 0`.
    pub lambda: f32,
}

impl<T: LogDensity> TanhLatent<T> {
    /// Wraps `q`; errors unless `λ` is finite and positive.
    pub fn new(q: T, lambda: f32) -> Result<Self, TargetError> {
        check_lambda(lambda)?;
        Ok(Self { q, lambda })
    }
}

impl<T: LogDensity> LogDensity for TanhLatent<T> {
    fn dim(&self) -> usize {
        self.q.dim()
    }

    fn log_prob_grad(&self, x: &[f32], logp: &mut [f32], grad: &mut [f32]) {
        assert_shapes(self.dim(), x, logp, grad);
        let a: Vec<f32> = x.iter().map(|&u| u.tanh()).collect();
        let mut q = vec![0.0; logp.len()];
        let mut gq = vec![0.0; grad.len()];
        self.q.log_prob_grad(&a, &mut q, &mut gq);
        boltzmann_latent_log_prob_grad(&q, &gq, x, self.lambda, logp, grad)
            .expect("TanhLatent: shapes and lambda were validated");
    }
}
