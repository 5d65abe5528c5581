//! The posterior-target pipeline, the one place it is assembled: for points `x_t` at times `t`,
//! draw `K` candidates per point from the proposal, evaluate the caller's log density and its
//! gradient at the endpoints `x1`, run the estimators and finish the regression target of the
//! parameterisation.
//!
//! ```text
//! (x_t [n·d], t [n]) ─ draw_candidates_from(proposal) → x0, x1 [n·K·d], log_iw [n·K]
//!                    ─ density(x1)                     → log p1 [n·K], ∇ log p1 [n·K·d]
//!                    ─ estimate(estimator)             → mu0, mu1 [n·d], ESS [n]
//!                    ─ regression                      → velocity α̇ mu1 + β̇ mu0 (flow)
//!                                                        or noise mu0 (diffusion)  [n·d]
//! ```
//!
//! The density is an async closure because in RL it reads the critic back from the device
//! (Boltzmann latent `Q(s, tanh x1)/λ + Σ log sech²`); a density known on the host (the
//! sampler's tempered target, the benches) awaits nothing and the synchronous callers finish
//! the future with [`ready`].

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::estimators::{
    Candidates, Estimator, EstimatorError, PosteriorBatch, PosteriorEstimate, Proposal,
    draw_candidates_from, estimate, noise_target, velocity_target,
};
use super::path::Path;
use crate::rng::Rng;

/// What the network regresses on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Regression {
    /// Flow matching: the velocity `α̇ mu1 + β̇ mu0` (`mu1 − mu0` on the linear path).
    #[default]
    Velocity,
    /// ε-prediction (diffusion): the noise posterior mean `mu0`.
    Noise,
}

impl Regression {
    /// The regression target (`[n·d]`) from the posterior means `mu0`, `mu1` at times `t`.
    pub fn target(
        self,
        path: &Path,
        t: &[f32],
        mu0: &[f32],
        mu1: &[f32],
        n: usize,
        d: usize,
    ) -> Vec<f32> {
        match self {
            Regression::Velocity => velocity_target(path, t, mu0, mu1, n, d),
            Regression::Noise => noise_target(path, t, mu0, n, d),
        }
    }
}

/// The settings of one posterior-target computation.
#[derive(Clone, Copy, Debug)]
pub struct PosteriorSpec<'a> {
    pub path: &'a Path,
    pub proposal: &'a Proposal,
    /// Each estimator gets the same candidates and density values; one result each, in order.
    pub estimators: &'a [Estimator],
    /// Candidates per point (≥ 1).
    pub k: usize,
    pub regression: Regression,
}

/// One estimator's result for `n` points.
#[derive(Clone, Debug, PartialEq)]
pub struct PosteriorTarget {
    /// `mu0`, `mu1` (`[n·d]`), ESS (`[n]`) and the control-variate coefficients.
    pub estimate: PosteriorEstimate,
    /// The regression target (`[n·d]`, see [`Regression`]); finite.
    pub target: Vec<f32>,
}

impl PosteriorTarget {
    /// Mean effective sample size over the points (`1..=K`).
    pub fn mean_ess(&self) -> f32 {
        mean_ess(&self.estimate.ess)
    }
}

/// The mean of per-point effective sample sizes (`0` for no points).
pub fn mean_ess(ess: &[f32]) -> f32 {
    ess.iter().sum::<f32>() / ess.len().max(1) as f32
}

/// Why [`posterior_targets`] failed.
#[derive(Debug, thiserror::Error)]
pub enum PosteriorError<E> {
    /// The caller's density failed (its own error).
    #[error("{0}")]
    Density(E),
    /// Shapes, non-finite density values or estimator parameters.
    #[error(transparent)]
    Estimator(#[from] EstimatorError),
    /// The finished regression target is not finite.
    #[error("regression target is {value} at index {index}")]
    NonFiniteTarget { index: usize, value: f32 },
}

/// The pipeline of the module docs for `xt` (`[n·d]`) at times `t` (`[n]`): candidates from
/// `spec.proposal` drawn from `rng`, `density(x1 [n·K·d]) → (log p1 [n·K], ∇ log p1 [n·K·d])`
/// called once, then every estimator of `spec.estimators` on the same values.
pub async fn posterior_targets<E>(
    spec: &PosteriorSpec<'_>,
    xt: &[f32],
    t: &[f32],
    d: usize,
    rng: &mut Rng,
    density: impl AsyncFnOnce(&[f32]) -> Result<(Vec<f32>, Vec<f32>), E>,
) -> Result<Vec<PosteriorTarget>, PosteriorError<E>> {
    let (n, k) = (t.len(), spec.k);
    let cand = checked_candidates(spec.proposal, spec.path, xt, t, k, d, rng)?;
    let (logp1, grad_logp1) = density(&cand.x1).await.map_err(PosteriorError::Density)?;
    let batch = PosteriorBatch {
        n,
        k,
        d,
        xt,
        t,
        x0: &cand.x0,
        x1: &cand.x1,
        logp1: &logp1,
        grad_logp1: &grad_logp1,
        log_iw: &cand.log_iw,
    };
    let mut out = Vec::with_capacity(spec.estimators.len());
    for est in spec.estimators {
        let e = estimate(spec.path, est, &batch)?;
        let target = spec.regression.target(spec.path, t, &e.mu0, &e.mu1, n, d);
        if let Some((index, &value)) = target.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(PosteriorError::NonFiniteTarget { index, value });
        }
        out.push(PosteriorTarget {
            estimate: e,
            target,
        });
    }
    Ok(out)
}

/// The pipeline's first stage: `K ≥ 1` candidates per point of `xt` (`[n·d]`, `d ≥ 1`) at
/// times `t` from a valid `proposal`, or the error that names what is wrong.
pub fn checked_candidates(
    proposal: &Proposal,
    path: &Path,
    xt: &[f32],
    t: &[f32],
    k: usize,
    d: usize,
    rng: &mut Rng,
) -> Result<Candidates, EstimatorError> {
    let n = t.len();
    check_candidates(proposal, xt.len(), n, k, d)?;
    Ok(draw_candidates_from(proposal, path, xt, t, n, k, d, rng))
}

/// What [`checked_candidates`] checks before it draws: `K ≥ 1`, `d ≥ 1`, `x_t` of `n·d`
/// values (`xt_len`), a valid `proposal`, in that order.
pub fn check_candidates(
    proposal: &Proposal,
    xt_len: usize,
    n: usize,
    k: usize,
    d: usize,
) -> Result<(), EstimatorError> {
    if k == 0 || d == 0 {
        return Err(EstimatorError::Empty { k, d });
    }
    if xt_len != n * d {
        return Err(EstimatorError::Shape {
            what: "xt [n*d]",
            expected: n * d,
            got: xt_len,
        });
    }
    proposal.validate()
}

/// The output of a future that never waits (a [`posterior_targets`] call whose density awaits
/// nothing): polled once. Panics if it is pending, which is a programming error.
pub fn ready<T>(f: impl Future<Output = T>) -> T {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("posterior::ready: the future waited (an async density?)"),
    }
}

/// `x_t = alpha_t x1 + beta_t x0` row by row on `path` (`x1`, `x0`: `[n·d]`, `t`: `[n]`).
pub fn interpolate(path: &Path, x1: &[f32], x0: &[f32], t: &[f32], d: usize) -> Vec<f32> {
    assert!(
        x1.len() == t.len() * d && x0.len() == x1.len(),
        "interpolate: x1 [{}] and x0 [{}] must be [n*d] = [{}*{d}]",
        x1.len(),
        x0.len(),
        t.len()
    );
    let mut xt = vec![0.0f32; x1.len()];
    for (i, &ti) in t.iter().enumerate() {
        let c = path.coeffs(ti);
        for o in i * d..(i + 1) * d {
            xt[o] = c.alpha * x1[o] + c.beta * x0[o];
        }
    }
    xt
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rfm::estimators::estimate_with_target_from;
    use crate::rfm::targets::{LogDensity, gmm8};
    use crate::rng::seeded;

    #[test]
    fn matches_the_hand_assembled_pipeline_for_every_regression() {
        let target = gmm8();
        let path = Path::Vp;
        let proposal = Proposal::LATENT_MIXTURE;
        let ests: Vec<Estimator> = ["rfm", "noise", "cv-pool"]
            .iter()
            .map(|n| Estimator::from_name(n).unwrap())
            .collect();
        let (n, d, k) = (6, 2, 16);
        let t: Vec<f32> = (0..n).map(|i| 0.1 + 0.15 * i as f32).collect();
        let xt = crate::rng::normals(&mut seeded(1), n * d);
        for regression in [Regression::Velocity, Regression::Noise] {
            let spec = PosteriorSpec {
                path: &path,
                proposal: &proposal,
                estimators: &ests,
                k,
                regression,
            };
            let got = ready(posterior_targets(
                &spec,
                &xt,
                &t,
                d,
                &mut seeded(7),
                async |x1: &[f32]| target.evaluate(x1),
            ))
            .unwrap();
            for (est, g) in ests.iter().zip(&got) {
                let want = estimate_with_target_from(
                    &proposal,
                    &path,
                    est,
                    &target,
                    &xt,
                    &t,
                    k,
                    &mut seeded(7),
                )
                .unwrap();
                assert_eq!(g.estimate, want);
                let v = match regression {
                    Regression::Velocity => velocity_target(&path, &t, &want.mu0, &want.mu1, n, d),
                    Regression::Noise => want.mu0.clone(),
                };
                assert_eq!(g.target, v);
                assert!((1.0..=k as f32).contains(&g.mean_ess()));
            }
        }
    }

    #[test]
    fn density_errors_and_bad_shapes_are_reported() {
        let spec = PosteriorSpec {
            path: &Path::Linear,
            proposal: &Proposal::Prior,
            estimators: &[Estimator::Noise],
            k: 4,
            regression: Regression::Velocity,
        };
        let r = ready(posterior_targets(
            &spec,
            &[0.0; 4],
            &[0.5; 2],
            2,
            &mut seeded(0),
            async |_: &[f32]| Err::<(Vec<f32>, Vec<f32>), _>("no critic"),
        ));
        assert!(matches!(r, Err(PosteriorError::Density("no critic"))));
        let r = ready(posterior_targets(
            &spec,
            &[0.0; 3],
            &[0.5; 2],
            2,
            &mut seeded(0),
            async |_: &[f32]| Ok::<_, &str>((vec![], vec![])),
        ));
        assert!(r.unwrap_err().to_string().contains("xt [n*d]"));
        assert_eq!(
            interpolate(&Path::Linear, &[1.0, 2.0], &[3.0, 4.0], &[0.25], 2),
            vec![0.25 + 0.75 * 3.0, 0.5 + 0.75 * 4.0]
        );
    }
}
