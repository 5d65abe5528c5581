//! Where the posterior estimator's `K` candidates per point come from ([`Proposal`]): the
//! prior on the noise (the paper's) or a defensive mixture with a data-space Gaussian, and the
//! draws themselves ([`draw_candidates_from`]) with their importance corrections.

use serde::{Deserialize, Serialize};

use super::estimators::EstimatorError;
use super::path::Path;
use crate::rng::{self, Rng};

/// `K` candidates for each of `N` points: `x0 [n*k*d]`, `x1 [n*k*d]` and, when the proposal is
/// not the prior on `x0`, the log importance correction of each candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidates {
    /// Noise candidates, `[n * k * d]` (point-major, then candidate); `x_t = alpha x1 + beta x0`.
    pub x0: Vec<f32>,
    /// Endpoints `x1 = (x_t - beta x0)/alpha`, `[n * k * d]`.
    pub x1: Vec<f32>,
    /// `[n * k]` `log r_prior(x1) - log r(x1)` for a proposal `r` other than the prior (added to
    /// `log p1` in the weights); empty for [`Proposal::Prior`].
    pub log_iw: Vec<f32>,
}

/// Where the `K` candidates of a point come from. Every choice estimates the same posterior
/// mean; they differ in variance and, with few candidates, in bias.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Proposal {
    /// The paper's and the released code's: `x0 ~ N(0, I)`, so `x1 ~ N(x_t/alpha, (beta/alpha)² I)`.
    /// At small `t` that is a Gaussian `1/t` times wider than the target; with few candidates
    /// the self-normalised weights pick the endpoint nearest the target's bulk, which is still
    /// far out, and the estimate is biased outward.
    #[default]
    Prior,
    /// Defensive mixture (multiple importance sampling, balance heuristic): a fraction `share`
    /// of the candidates is drawn in data space, `x1 ~ N(0, scale² I)`, the rest from the prior;
    /// every candidate is weighted by `p1(x1) r_prior(x1) / r_mix(x1)` with
    /// `r_mix = (1 - share) r_prior + share N(0, scale² I)`. Consistent at every `t`; at small
    /// `t` the data-space half carries the estimate, near `t = 1` the prior half does.
    Mixture { scale: f32, share: f32 },
}

impl Proposal {
    /// The mixture used by the playground's RL presets: half the candidates from `N(0, 1.5² I)`
    /// in the tanh latent (`tanh(3) = 0.995`, so it covers the action box).
    pub const LATENT_MIXTURE: Proposal = Proposal::Mixture {
        scale: 1.5,
        share: 0.5,
    };

    /// The data-space Gaussian's scale and how many of `k` candidates are drawn from it: the
    /// last `round(share·k)`, at most `k − 1` (`(1, 0)` for the prior).
    pub fn split(&self, k: usize) -> (f32, usize) {
        match *self {
            Proposal::Prior => (1.0, 0),
            Proposal::Mixture { scale, share } => {
                let kd = ((share as f64 * k as f64).round() as usize).min(k.saturating_sub(1));
                (scale, kd)
            }
        }
    }

    /// `scale` finite and positive, `share` in `[0, 1)`.
    pub fn validate(&self) -> Result<(), EstimatorError> {
        match *self {
            Proposal::Prior => Ok(()),
            Proposal::Mixture { scale, share }
                if scale.is_finite() && scale > 0.0 && (0.0..1.0).contains(&share) =>
            {
                Ok(())
            }
            _ => Err(EstimatorError::BadParam(format!(
                "proposal scale must be > 0 and share in [0, 1), got {self:?}"
            ))),
        }
    }
}

/// Draw `K` noise candidates per point: `x0 ~ N(0, I)` `[n*k*d]` and
/// `x1 = (x_t - beta x0)/alpha` `[n*k*d]`, for `xt [n*d]` at times `t [n]`.
///
/// Panics if `xt`/`t` disagree with `n`, `d` (a programming error; [`super::estimators::estimate`] validates
/// everything it receives).
pub fn draw_candidates(
    path: &Path,
    xt: &[f32],
    t: &[f32],
    n: usize,
    k: usize,
    d: usize,
    rng: &mut Rng,
) -> Candidates {
    draw_candidates_from(&Proposal::Prior, path, xt, t, n, k, d, rng)
}

/// [`draw_candidates`] from any [`Proposal`]. With a mixture, the first
/// `k - round(share·k)` candidates of each point come from the prior and the rest from the
/// data-space Gaussian (at least one from the prior whenever `k ≥ 2`).
#[allow(clippy::too_many_arguments)]
pub fn draw_candidates_from(
    proposal: &Proposal,
    path: &Path,
    xt: &[f32],
    t: &[f32],
    n: usize,
    k: usize,
    d: usize,
    rng: &mut Rng,
) -> Candidates {
    assert!(
        xt.len() == n * d && t.len() == n,
        "draw_candidates: xt [{}] must be [n*d] = [{n}*{d}] and t [{}] must be [n] = [{n}]",
        xt.len(),
        t.len()
    );
    draw_candidates_with(proposal, path, xt, t, n, k, d, rng::normals(rng, n * k * d))
}

/// [`draw_candidates_from`] on standard normals drawn already (`z [n*k*d]`, what it draws
/// first): the same candidates from the same numbers, for a caller that draws ahead (the
/// fused WebGPU update computes them on the device from the same draws).
#[allow(clippy::too_many_arguments)]
pub fn draw_candidates_with(
    proposal: &Proposal,
    path: &Path,
    xt: &[f32],
    t: &[f32],
    n: usize,
    k: usize,
    d: usize,
    z: Vec<f32>,
) -> Candidates {
    assert!(
        xt.len() == n * d && t.len() == n && z.len() == n * k * d,
        "draw_candidates: xt [{}] must be [n*d] = [{n}*{d}], t [{}] [n] and z [{}] [n*k*d]",
        xt.len(),
        t.len(),
        z.len()
    );
    let mut x0 = z;
    let mut x1 = vec![0.0; n * k * d];
    let (scale, k_data) = proposal.split(k);
    let scale = scale as f64;
    let k_prior = k - k_data;
    for i in 0..n {
        let c = path.coeffs(t[i]);
        let (a, b) = (c.alpha as f64, c.beta as f64);
        for kk in 0..k {
            let o = (i * k + kk) * d;
            for j in 0..d {
                let x = xt[i * d + j] as f64;
                if kk < k_prior {
                    x1[o + j] = ((x - b * x0[o + j] as f64) / a) as f32;
                } else {
                    // The same standard normal, read as a data-space draw.
                    let e = scale * x0[o + j] as f64;
                    x1[o + j] = e as f32;
                    x0[o + j] = ((x - a * e) / b) as f32;
                }
            }
        }
    }
    let log_iw = if k_data == 0 {
        Vec::new()
    } else {
        mixture_log_iw(path, t, &x0, &x1, n, k, d, scale, k_data as f64 / k as f64)
    };
    Candidates { x0, x1, log_iw }
}

/// `log r_prior(x1) - log r_mix(x1)` per candidate, with the densities over `x1`:
/// `r_prior = N(x_t/alpha, (beta/alpha)² I)` (its exponent is `-|x0|²/2`) and
/// `r_data = N(0, scale² I)`; constants common to all candidates of a point are dropped.
#[allow(clippy::too_many_arguments)]
fn mixture_log_iw(
    path: &Path,
    t: &[f32],
    x0: &[f32],
    x1: &[f32],
    n: usize,
    k: usize,
    d: usize,
    scale: f64,
    share: f64,
) -> Vec<f32> {
    let mut out = vec![0.0; n * k];
    let dd = d as f64;
    for i in 0..n {
        let c = path.coeffs(t[i]);
        let sigma = c.beta as f64 / c.alpha as f64;
        for kk in 0..k {
            let o = (i * k + kk) * d;
            let (mut s0, mut s1) = (0.0, 0.0);
            for j in 0..d {
                s0 += (x0[o + j] as f64).powi(2);
                s1 += (x1[o + j] as f64).powi(2);
            }
            let lp = -0.5 * s0 - dd * sigma.ln();
            let ld = -0.5 * s1 / (scale * scale) - dd * scale.ln();
            let (u, v) = ((1.0 - share).ln() + lp, share.ln() + ld);
            let lmix = u.max(v) + (-(u - v).abs()).exp().ln_1p();
            out[i * k + kk] = (lp - lmix) as f32;
        }
    }
    out
}
