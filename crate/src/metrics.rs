//! Metrics against exact targets (sliced W2, MMD, grid KL, per-mode mass, estimator variance).
//!
//! Pure functions over row-major `f32` sample sets (`[n * d]`); every randomised metric takes
//! the caller's seeded [`Rng`]. Inputs are validated (shape, emptiness, finiteness) and errors
//! name the offending argument.
//!
//! | function | returns |
//! |---|---|
//! | [`sliced_w2`] | `sqrt(E_θ W2²(θᵀa, θᵀb))` over random unit directions `θ` |
//! | [`mmd2_rbf`] | unbiased MMD² with an RBF kernel (median heuristic or fixed bandwidth) |
//! | [`grid_kl`] | `KL(target ‖ model)` and `KL(model ‖ target)` on a 2-D grid |
//! | [`per_mode_mass`] | fraction of samples nearest each mode of a mixture |
//! | [`mode_spread`] | pooled within-mode std about the true means, fraction within a radius of a mean |
//! | [`estimator_variance_by_t`] | per-time variance / MSE of an estimator's regression target |

use serde::{Deserialize, Serialize};

use crate::rfm::estimators::{Estimator, EstimatorError, Proposal, velocity_target};
use crate::rfm::path::Path;
use crate::rfm::posterior::{PosteriorError, PosteriorSpec, Regression, posterior_targets, ready};
use crate::rfm::targets::{LogDensity, TargetError};
use crate::rng::{self, Rng};

/// Errors from the metrics.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// A slice whose length is not what the shape requires.
    #[error("shape mismatch for {what}: expected {expected} values, got {got}")]
    Shape {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// Too few samples or points for the metric.
    #[error("{0}")]
    TooFew(String),
    /// NaN or infinity in an input.
    #[error("non-finite value in {what} at index {index}")]
    NonFinite { what: &'static str, index: usize },
    /// A parameter out of range.
    #[error("invalid metric parameter: {0}")]
    BadParam(String),
    /// From the estimator.
    #[error("estimator: {0}")]
    Estimator(#[from] EstimatorError),
    /// From the target.
    #[error("target: {0}")]
    Target(#[from] TargetError),
}

/// `v` holds whole rows of `d` values, at least `min_rows` of them, all finite; returns the row
/// count.
fn rows(what: &'static str, v: &[f32], d: usize, min_rows: usize) -> Result<usize, MetricsError> {
    if d == 0 {
        return Err(MetricsError::BadParam("dimension d must be > 0".into()));
    }
    if !v.len().is_multiple_of(d) {
        return Err(MetricsError::Shape {
            what,
            expected: v.len().div_ceil(d) * d,
            got: v.len(),
        });
    }
    let n = v.len() / d;
    if n < min_rows {
        return Err(MetricsError::TooFew(format!(
            "{what} needs at least {min_rows} rows of d = {d}, got {n}"
        )));
    }
    if let Some(index) = v.iter().position(|x| !x.is_finite()) {
        return Err(MetricsError::NonFinite { what, index });
    }
    Ok(n)
}

// ---------------------------------------------------------------- sliced W2 ---

/// Sliced Wasserstein-2 distance between sample sets `a` (`[na * d]`) and `b` (`[nb * d]`):
/// `sqrt(mean over n_proj random unit θ of W2²(θᵀa, θᵀb))`. Each 1-D W2² compares sorted
/// quantiles (`max(na, nb)` levels `(i + ½)/m`, exact for equal sizes).
///
/// For `N(0, I)` vs `N(m, I)` in `d` dimensions the exact value is `‖m‖/sqrt(d)`
/// (`W2²(θ) = (θᵀm)²` and `E[(θᵀm)²] = ‖m‖²/d` for `θ` uniform on the sphere); in 1-D it is the
/// ordinary `W2 = |m|`.
pub fn sliced_w2(
    a: &[f32],
    b: &[f32],
    d: usize,
    n_proj: usize,
    rng: &mut Rng,
) -> Result<f32, MetricsError> {
    let na = rows("a", a, d, 1)?;
    let nb = rows("b", b, d, 1)?;
    if n_proj == 0 {
        return Err(MetricsError::BadParam("n_proj must be > 0".into()));
    }
    let m = na.max(nb);
    let mut pa = vec![0.0f64; na];
    let mut pb = vec![0.0f64; nb];
    let mut total = 0.0;
    for _ in 0..n_proj {
        let theta = random_unit(rng, d);
        project(a, d, &theta, &mut pa);
        project(b, d, &theta, &mut pb);
        pa.sort_by(f64::total_cmp);
        pb.sort_by(f64::total_cmp);
        let mut w2 = 0.0;
        for i in 0..m {
            let u = (i as f64 + 0.5) / m as f64;
            let qa = pa[((u * na as f64) as usize).min(na - 1)];
            let qb = pb[((u * nb as f64) as usize).min(nb - 1)];
            w2 += (qa - qb).powi(2);
        }
        total += w2 / m as f64;
    }
    Ok((total / n_proj as f64).sqrt() as f32)
}

fn random_unit(rng: &mut Rng, d: usize) -> Vec<f64> {
    loop {
        let v: Vec<f64> = rng::normals(rng, d).into_iter().map(f64::from).collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-12 {
            return v.into_iter().map(|x| x / norm).collect();
        }
    }
}

fn project(x: &[f32], d: usize, theta: &[f64], out: &mut [f64]) {
    for (o, row) in out.iter_mut().zip(x.chunks(d)) {
        *o = row.iter().zip(theta).map(|(&a, t)| a as f64 * t).sum();
    }
}

// ---------------------------------------------------------------- MMD ---

/// RBF bandwidth choice for [`mmd2_rbf`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Bandwidth {
    /// Median pairwise distance of the pooled samples (first 500 rows of each set).
    Median,
    /// A fixed length scale `h > 0`.
    Fixed(f32),
}

/// Unbiased estimate of MMD² between `a` (`[na * d]`) and `b` (`[nb * d]`) with the kernel
/// `k(x, y) = exp(-‖x - y‖² / (2 h²))`. It can be slightly negative for identical
/// distributions. Cost `O((na + nb)² d)`. Needs at least 2 rows in each set.
pub fn mmd2_rbf(a: &[f32], b: &[f32], d: usize, bw: Bandwidth) -> Result<f32, MetricsError> {
    let na = rows("a", a, d, 2)?;
    let nb = rows("b", b, d, 2)?;
    let h = match bw {
        Bandwidth::Fixed(h) if h.is_finite() && h > 0.0 => h as f64,
        Bandwidth::Fixed(h) => {
            return Err(MetricsError::BadParam(format!(
                "bandwidth must be finite and > 0, got {h}"
            )));
        }
        Bandwidth::Median => median_distance(a, b, d),
    };
    let inv = 1.0 / (2.0 * h * h);
    let sq = |x: &[f32], y: &[f32]| -> f64 {
        x.iter()
            .zip(y)
            .map(|(&p, &q)| (p as f64 - q as f64).powi(2))
            .sum()
    };
    let within = |x: &[f32], n: usize| -> f64 {
        let mut s = 0.0;
        for i in 0..n {
            for j in (i + 1)..n {
                s += (-sq(&x[i * d..(i + 1) * d], &x[j * d..(j + 1) * d]) * inv).exp();
            }
        }
        2.0 * s / (n * (n - 1)) as f64
    };
    let mut cross = 0.0;
    for i in 0..na {
        for j in 0..nb {
            cross += (-sq(&a[i * d..(i + 1) * d], &b[j * d..(j + 1) * d]) * inv).exp();
        }
    }
    Ok((within(a, na) + within(b, nb) - 2.0 * cross / (na * nb) as f64) as f32)
}

fn median_distance(a: &[f32], b: &[f32], d: usize) -> f64 {
    let cap = 500 * d;
    let pooled: Vec<&[f32]> = a[..a.len().min(cap)]
        .chunks(d)
        .chain(b[..b.len().min(cap)].chunks(d))
        .collect();
    let mut dist = Vec::with_capacity(pooled.len() * pooled.len() / 2);
    for i in 0..pooled.len() {
        for j in (i + 1)..pooled.len() {
            let s: f64 = pooled[i]
                .iter()
                .zip(pooled[j])
                .map(|(&p, &q)| (p as f64 - q as f64).powi(2))
                .sum();
            dist.push(s.sqrt());
        }
    }
    let mid = dist.len() / 2;
    let (_, m, _) = dist.select_nth_unstable_by(mid, f64::total_cmp);
    if *m > 0.0 { *m } else { 1.0 }
}

// ---------------------------------------------------------------- grid KL ---

/// A square-celled 2-D grid `[lo, hi]` with `bins × bins` cells.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid2d {
    /// Lower corner `(x, y)`.
    pub lo: [f32; 2],
    /// Upper corner `(x, y)`.
    pub hi: [f32; 2],
    /// Cells per axis.
    pub bins: usize,
}

impl Grid2d {
    /// The square `[lo, hi]²` with `bins` cells per axis.
    pub fn square(lo: f32, hi: f32, bins: usize) -> Self {
        Self {
            lo: [lo, lo],
            hi: [hi, hi],
            bins,
        }
    }

    fn validate(&self) -> Result<(), MetricsError> {
        let ok = (0..2)
            .all(|i| self.lo[i].is_finite() && self.hi[i].is_finite() && self.hi[i] > self.lo[i]);
        if !ok || self.bins == 0 {
            return Err(MetricsError::BadParam(format!(
                "grid needs finite lo < hi and bins > 0, got {self:?}"
            )));
        }
        Ok(())
    }

    /// Cell centres `[bins² * 2]`, row-major with `x` fastest.
    pub fn centres(&self) -> Vec<f32> {
        let b = self.bins;
        let hx = (self.hi[0] - self.lo[0]) / b as f32;
        let hy = (self.hi[1] - self.lo[1]) / b as f32;
        (0..b * b)
            .flat_map(|c| {
                [
                    self.lo[0] + hx * ((c % b) as f32 + 0.5),
                    self.lo[1] + hy * ((c / b) as f32 + 0.5),
                ]
            })
            .collect()
    }

    /// The cell holding `p`, if it lies in the box.
    pub fn cell(&self, p: &[f32]) -> Option<usize> {
        let b = self.bins;
        let fx = (p[0] - self.lo[0]) / (self.hi[0] - self.lo[0]);
        let fy = (p[1] - self.lo[1]) / (self.hi[1] - self.lo[1]);
        if !(0.0..=1.0).contains(&fx) || !(0.0..=1.0).contains(&fy) {
            return None;
        }
        let ix = ((fx * b as f32) as usize).min(b - 1);
        let iy = ((fy * b as f32) as usize).min(b - 1);
        Some(iy * b + ix)
    }
}

/// Both directions of the grid KL.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridKl {
    /// `Σ_c p_c log(p_c / q_c)`: target `p` against the smoothed histogram `q` (mode coverage).
    pub kl_target_model: f32,
    /// `Σ_c q̂_c log(q̂_c / p_c)`: the raw histogram `q̂` (empty cells add 0) against the target
    /// floored at `1e-12` (mass placed where the target has none).
    pub kl_model_target: f32,
    /// Fraction of samples outside the grid (not counted in either KL).
    pub outside: f32,
}

/// KL divergences on `grid` between the target (its density at the cell centres, normalised
/// numerically over the grid) and the histogram of `samples` (`[n * 2]`). The histogram used in
/// `KL(target ‖ model)` adds `pseudo_count > 0` to every cell, so no `log 0` occurs.
pub fn grid_kl(
    target: &dyn LogDensity,
    samples: &[f32],
    grid: &Grid2d,
    pseudo_count: f32,
) -> Result<GridKl, MetricsError> {
    if target.dim() != 2 {
        return Err(MetricsError::BadParam(format!(
            "grid KL needs a 2-D target, got d = {}",
            target.dim()
        )));
    }
    grid.validate()?;
    if !(pseudo_count.is_finite() && pseudo_count > 0.0) {
        return Err(MetricsError::BadParam(format!(
            "pseudo_count must be finite and > 0, got {pseudo_count}"
        )));
    }
    let n = rows("samples", samples, 2, 1)?;
    let (logp, _) = target.evaluate(&grid.centres())?;
    let p = masses_from_log(&logp, 1.0);
    let counts = grid_histogram(samples, grid);
    let inside: f32 = counts.iter().sum();
    let kl_pq = kl_to_histogram(&p, &counts, pseudo_count);
    let mut kl_qp = 0.0f64;
    for (&pc, &c) in p.iter().zip(&counts) {
        if c > 0.0 {
            let q = c as f64 / inside as f64;
            kl_qp += q * (q / (pc as f64).max(1e-12)).ln();
        }
    }
    Ok(GridKl {
        kl_target_model: kl_pq,
        kl_model_target: kl_qp as f32,
        outside: (n as f32 - inside) / n as f32,
    })
}

/// The one histogram KL of the crate (`rfm sample`, `rfm eval` and the page all use it):
/// `KL(p ‖ q̃)` in nats, where `p` are target masses per cell and
/// `q̃ = (counts + a) / (Σ counts + a · cells)` is the histogram of the samples that fell inside
/// the grid, smoothed by the pseudo-count `a > 0` so no `log 0` occurs.
pub fn kl_to_histogram(p: &[f32], counts: &[f32], pseudo_count: f32) -> f32 {
    assert_eq!(
        p.len(),
        counts.len(),
        "kl_to_histogram: masses and counts differ in length"
    );
    let a = pseudo_count as f64;
    let inside: f64 = counts.iter().map(|&c| c as f64).sum();
    let total = inside + a * counts.len() as f64;
    p.iter()
        .zip(counts)
        .filter(|(pi, _)| **pi > 0.0)
        .map(|(&pi, &ci)| {
            let (pi, q) = (pi as f64, (ci as f64 + a) / total);
            pi * (pi / q).ln()
        })
        .sum::<f64>() as f32
}

/// `KL(p ‖ uniform)` over `p`'s cells, nats: what a policy that knows nothing scores.
pub fn kl_uniform(p: &[f32]) -> f32 {
    let cells = p.len() as f64;
    p.iter()
        .filter(|&&pi| pi > 0.0)
        .map(|&pi| pi as f64 * (pi as f64 * cells).ln())
        .sum::<f64>() as f32
}

/// Normalised cell masses `softmax(scale · logp)` of an unnormalised log density at the cell
/// centres (computed stably in f64; non-finite entries get mass 0).
pub fn masses_from_log(logp: &[f32], scale: f32) -> Vec<f32> {
    let max = logp
        .iter()
        .map(|&x| x as f64 * scale as f64)
        .filter(|x| x.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logp
        .iter()
        .map(|&x| {
            let y = x as f64 * scale as f64 - max;
            if y.is_finite() { y.exp() } else { 0.0 }
        })
        .collect();
    let z: f64 = e.iter().sum();
    e.iter().map(|&x| (x / z) as f32).collect()
}

/// Counts of 2-D `samples` (`[n * 2]`) per cell of `grid`, x fastest (points outside dropped).
pub fn grid_histogram(samples: &[f32], grid: &Grid2d) -> Vec<f32> {
    let mut h = vec![0.0; grid.bins * grid.bins];
    for p in samples.chunks_exact(2) {
        if let Some(c) = grid.cell(p) {
            h[c] += 1.0;
        }
    }
    h
}

// ---------------------------------------------------------------- per-mode spread ---

/// How tight the samples sit around a mixture's means (see [`mode_spread`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeSpread {
    /// Pooled within-mode standard deviation per coordinate about the nearest true mean:
    /// `sqrt(mean over samples and coordinates of (x − m_nearest)²)`. For exact samples of an
    /// isotropic mixture with well-separated modes it is the components' std.
    pub within_std: f32,
    /// Fraction of samples within `radius` of some mean.
    pub near_fraction: f32,
    /// The radius of `near_fraction`.
    pub radius: f32,
}

/// The index of the mode (`modes`, `[n_modes * d]`) nearest to point `s` and its squared distance.
fn nearest_mode(s: &[f32], modes: &[f32], d: usize) -> (usize, f64) {
    modes
        .chunks(d)
        .map(|m| {
            s.iter()
                .zip(m)
                .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                .sum::<f64>()
        })
        .enumerate()
        .fold(
            (0, f64::INFINITY),
            |acc, (k, v)| if v < acc.1 { (k, v) } else { acc },
        )
}

/// [`ModeSpread`] of `samples` (`[n * d]`) about `modes` (`[n_modes * d]`).
pub fn mode_spread(
    samples: &[f32],
    modes: &[f32],
    d: usize,
    radius: f32,
) -> Result<ModeSpread, MetricsError> {
    let n = rows("samples", samples, d, 1)?;
    rows("modes", modes, d, 1)?;
    if !(radius.is_finite() && radius > 0.0) {
        return Err(MetricsError::BadParam(format!(
            "radius must be > 0, got {radius}"
        )));
    }
    let (mut ss, mut near) = (0.0f64, 0usize);
    let r2 = (radius as f64).powi(2);
    for s in samples.chunks(d) {
        let (_, dist) = nearest_mode(s, modes, d);
        ss += dist;
        if dist <= r2 {
            near += 1;
        }
    }
    Ok(ModeSpread {
        within_std: (ss / (n * d) as f64).sqrt() as f32,
        near_fraction: near as f32 / n as f32,
        radius,
    })
}

// ---------------------------------------------------------------- per-mode mass ---

/// Fractions of samples per mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModeMass {
    /// `[n_modes]` fraction of all samples whose nearest mode is this one.
    pub fractions: Vec<f32>,
    /// Fraction farther than `max_dist` from every mode (0 without a cut-off).
    pub unassigned: f32,
}

impl ModeMass {
    /// Total-variation distance between `fractions` and equal weights `1/n_modes`
    /// (unassigned mass counts as missing): 0 when every mode has its share.
    pub fn tv_from_uniform(&self) -> f32 {
        let u = 1.0 / self.fractions.len() as f32;
        0.5 * (self.fractions.iter().map(|f| (f - u).abs()).sum::<f32>() + self.unassigned)
    }
}

/// Assign each sample (`[n * d]`) to its nearest mode (`modes`, `[n_modes * d]`); samples
/// farther than `max_dist` from every mode count as unassigned.
pub fn per_mode_mass(
    samples: &[f32],
    modes: &[f32],
    d: usize,
    max_dist: Option<f32>,
) -> Result<ModeMass, MetricsError> {
    let n = rows("samples", samples, d, 1)?;
    let km = rows("modes", modes, d, 1)?;
    let cut = match max_dist {
        Some(r) if r.is_finite() && r > 0.0 => (r as f64).powi(2),
        Some(r) => {
            return Err(MetricsError::BadParam(format!(
                "max_dist must be > 0, got {r}"
            )));
        }
        None => f64::INFINITY,
    };
    let mut counts = vec![0usize; km];
    let mut unassigned = 0usize;
    for s in samples.chunks(d) {
        let (best, dist) = nearest_mode(s, modes, d);
        if dist <= cut {
            counts[best] += 1;
        } else {
            unassigned += 1;
        }
    }
    Ok(ModeMass {
        fractions: counts.iter().map(|&c| c as f32 / n as f32).collect(),
        unassigned: unassigned as f32 / n as f32,
    })
}

// ---------------------------------------------------------------- estimator variance ---

/// Settings of [`estimator_variance_by_t`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VarianceConfig {
    /// Times at which to measure.
    pub ts: Vec<f32>,
    /// Points `x_t` per time (drawn from the path marginal).
    pub n_points: usize,
    /// Candidates per estimate (RFM code: 100).
    pub k: usize,
    /// Independent repeats per point (fresh candidates, same `x_t`); at least 2.
    pub reps: usize,
}

impl Default for VarianceConfig {
    fn default() -> Self {
        Self {
            ts: (1..=9).map(|i| i as f32 / 10.0).collect(),
            n_points: 16,
            k: 100,
            reps: 64,
        }
    }
}

/// One time bin of [`estimator_variance_by_t`]; all quantities are about the velocity target
/// `v = alpha_dot mu1 + beta_dot mu0` (what the flow network regresses on), in trace form
/// (summed over dimensions), averaged over points.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VarianceBin {
    /// Time.
    pub t: f32,
    /// `E_points[ tr Var_reps(v̂) ]` (unbiased over repeats).
    pub variance: f32,
    /// `E_points E_reps ‖v̂ - v_true‖²`, when a ground truth was given.
    pub mse: Option<f32>,
    /// `E_points ‖mean_reps v̂ - v_true‖²`, when a ground truth was given.
    pub bias2: Option<f32>,
    /// Mean ESS of the importance weights.
    pub ess: f32,
}

/// Ground truth `E[X1 | x_t]`: `(xt [n*d], t [n]) -> mu1 [n*d]`.
pub type TruthFn<'a> = &'a dyn Fn(&[f32], &[f32]) -> Vec<f32>;

/// Per-time estimator variance: for each `t` in `cfg.ts`, draw `cfg.n_points` points
/// `x_t = alpha x1 + beta x0` with `x1` taken in turn from `data` (`[m * d]`, e.g. exact
/// target samples) and `x0 ~ N(0, I)`, run `est` `cfg.reps` times with fresh candidates on the
/// same points, and report the spread of the velocity target (and its error against `truth`,
/// the closed-form or reference posterior mean of `x1`, if given).
pub fn estimator_variance_by_t(
    path: &Path,
    est: &Estimator,
    target: &dyn LogDensity,
    data: &[f32],
    truth: Option<TruthFn>,
    cfg: &VarianceConfig,
    rng: &mut Rng,
) -> Result<Vec<VarianceBin>, MetricsError> {
    let d = target.dim();
    let m = rows("data", data, d, 1)?;
    if cfg.n_points == 0 || cfg.reps < 2 || cfg.k == 0 {
        return Err(MetricsError::BadParam(format!(
            "need n_points > 0, reps >= 2 and k > 0, got {cfg:?}"
        )));
    }
    if let Some(i) = cfg.ts.iter().position(|t| !t.is_finite()) {
        return Err(MetricsError::NonFinite {
            what: "ts",
            index: i,
        });
    }
    let (np, reps) = (cfg.n_points, cfg.reps);
    let mut out = Vec::with_capacity(cfg.ts.len());
    let mut next = 0usize;
    for &t in &cfg.ts {
        let c = path.coeffs(t);
        let mut xt = vec![0.0f32; np * d];
        let noise = rng::normals(rng, np * d);
        for i in 0..np {
            let x1 = &data[(next % m) * d..(next % m + 1) * d];
            next += 1;
            for j in 0..d {
                xt[i * d + j] = c.alpha * x1[j] + c.beta * noise[i * d + j];
            }
        }
        let v_true = truth.map(|f| {
            let ts = vec![t; np];
            let mu1 = f(&xt, &ts);
            let mu0: Vec<f32> = (0..np * d)
                .map(|o| ((xt[o] as f64 - c.alpha as f64 * mu1[o] as f64) / c.beta as f64) as f32)
                .collect();
            velocity_target(path, &ts, &mu0, &mu1, np, d)
        });
        if let Some(v) = &v_true
            && v.len() != np * d
        {
            return Err(MetricsError::Shape {
                what: "truth(xt, t) [n*d]",
                expected: np * d,
                got: v.len(),
            });
        }
        // Every repeat of every point in one batch: row r * np + i is repeat r of point i.
        let xts: Vec<f32> = xt.iter().copied().cycle().take(reps * np * d).collect();
        let ts = vec![t; reps * np];
        let spec = PosteriorSpec {
            path,
            proposal: &Proposal::Prior,
            estimators: std::slice::from_ref(est),
            k: cfg.k,
            regression: Regression::Velocity,
        };
        let post = ready(posterior_targets(
            &spec,
            &xts,
            &ts,
            d,
            rng,
            async |x1: &[f32]| target.evaluate(x1),
        ))
        .map_err(|e| match e {
            PosteriorError::Density(e) => MetricsError::Target(e),
            PosteriorError::Estimator(e) => MetricsError::Estimator(e),
            PosteriorError::NonFiniteTarget { index, .. } => MetricsError::NonFinite {
                what: "velocity target",
                index,
            },
        })?
        .pop()
        .expect("one estimator, one target");
        let (e, v) = (post.estimate, post.target);
        let (mut var, mut mse, mut bias2) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..np {
            for j in 0..d {
                let vals = (0..reps).map(|r| v[(r * np + i) * d + j] as f64);
                let mean = vals.clone().sum::<f64>() / reps as f64;
                var += vals.clone().map(|x| (x - mean).powi(2)).sum::<f64>() / (reps - 1) as f64;
                if let Some(vt) = &v_true {
                    let truth = vt[i * d + j] as f64;
                    mse += vals.map(|x| (x - truth).powi(2)).sum::<f64>() / reps as f64;
                    bias2 += (mean - truth).powi(2);
                }
            }
        }
        out.push(VarianceBin {
            t,
            variance: (var / np as f64) as f32,
            mse: v_true.as_ref().map(|_| (mse / np as f64) as f32),
            bias2: v_true.as_ref().map(|_| (bias2 / np as f64) as f32),
            ess: (e.ess.iter().map(|&s| s as f64).sum::<f64>() / e.ess.len() as f64) as f32,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rfm::targets::{Target, gmm8};
    use crate::rng::seeded;

    #[test]
    fn sliced_w2_of_a_set_with_itself_is_zero() {
        let mut rng = seeded(1);
        let a = rng::normals(&mut rng, 1000);
        assert_eq!(sliced_w2(&a, &a, 2, 20, &mut rng).unwrap(), 0.0);
    }

    #[test]
    fn sliced_w2_of_shifted_gaussians_matches_the_closed_form() {
        let mut rng = seeded(2);
        let n = 4000;
        // 1-D: N(0, 1) vs N(1, 1) → W2 = 1 exactly.
        let a = rng::normals(&mut rng, n);
        let b: Vec<f32> = rng::normals(&mut rng, n).iter().map(|v| v + 1.0).collect();
        let w = sliced_w2(&a, &b, 1, 4, &mut rng).unwrap();
        assert!((w - 1.0).abs() < 0.05, "1-D W2 {w}");
        // 2-D: N(0, I) vs N((1, 0), I) → ‖m‖/sqrt(2) ≈ 0.7071.
        let a = rng::normals(&mut rng, 2 * n);
        let mut b = rng::normals(&mut rng, 2 * n);
        b.iter_mut().step_by(2).for_each(|v| *v += 1.0);
        let w = sliced_w2(&a, &b, 2, 200, &mut rng).unwrap();
        assert!(
            (w - std::f32::consts::FRAC_1_SQRT_2).abs() < 0.05,
            "2-D SW2 {w}"
        );
        // Unequal sizes work through the quantile grid.
        let w = sliced_w2(&a[..2000], &b, 2, 200, &mut rng).unwrap();
        assert!(
            (w - std::f32::consts::FRAC_1_SQRT_2).abs() < 0.06,
            "2-D SW2 {w}"
        );
    }

    #[test]
    fn mmd_is_small_for_identical_distributions_and_large_otherwise() {
        let g = gmm8();
        let mut rng = seeded(3);
        let a = g.sample(&mut rng, 400).unwrap();
        let b = g.sample(&mut rng, 400).unwrap();
        let same = mmd2_rbf(&a, &a, 2, Bandwidth::Median).unwrap();
        let iid = mmd2_rbf(&a, &b, 2, Bandwidth::Median).unwrap();
        // Only half the modes: a clear difference.
        let half: Vec<f32> = b
            .chunks(2)
            .filter(|p| p[1] > 0.5)
            .flatten()
            .copied()
            .collect();
        let off = mmd2_rbf(&a, &half, 2, Bandwidth::Median).unwrap();
        assert!(same.abs() < 1e-2, "self {same}");
        assert!(iid.abs() < 1e-2, "iid {iid}");
        assert!(off > 0.05, "half the modes {off}");
        assert!(mmd2_rbf(&a, &b, 2, Bandwidth::Fixed(1.0)).unwrap().abs() < 1e-2);
    }

    #[test]
    fn grid_kl_is_small_for_exact_samples() {
        let g = Target::from_name("gmm8").unwrap();
        let mut rng = seeded(4);
        let s = g.sample(&mut rng, 20_000).unwrap();
        let grid = Grid2d::square(-7.0, 7.0, 40);
        let kl = grid_kl(&g, &s, &grid, 0.5).unwrap();
        assert!(
            kl.kl_target_model < 0.05 && kl.kl_model_target < 0.05,
            "{kl:?}"
        );
        assert!(kl.outside < 1e-3);
        // A model with one mode only: KL(target ‖ model) ≈ log 8 - (something) ≫ 0.
        let one: Vec<f32> = s
            .chunks(2)
            .filter(|p| p[0] > 3.0 && p[1].abs() < 1.5)
            .flatten()
            .copied()
            .collect();
        let bad = grid_kl(&g, &one, &grid, 0.5).unwrap();
        assert!(
            bad.kl_target_model > 1.0 && (bad.kl_model_target - 8f32.ln()).abs() < 0.1,
            "{bad:?}"
        );
    }

    #[test]
    fn mode_spread_of_exact_gmm8_samples_is_the_component_std() {
        // 2-D N(m, 0.5² I): per-coordinate std 0.5; P(|x − m| ≤ 1.5) = 1 − exp(−(1.5/0.5)²/2)
        // = 0.98889.
        let g = gmm8();
        let s = g.sample(&mut seeded(2), 40_000).unwrap();
        let sp = mode_spread(&s, &g.means, 2, 1.5).unwrap();
        assert!((sp.within_std - 0.5).abs() < 0.01, "{sp:?}");
        assert!((sp.near_fraction - 0.98889).abs() < 0.003, "{sp:?}");
        // One sample 10 away from every mean of a one-mode mixture: std 10/√2, none near.
        let far = mode_spread(&[10.0, 0.0], &[0.0, 0.0], 2, 1.5).unwrap();
        assert!((far.within_std - 10.0 / 2f32.sqrt()).abs() < 1e-5 && far.near_fraction == 0.0);
        assert!(mode_spread(&[0.0, 0.0], &[0.0, 0.0], 2, 0.0).is_err());
    }

    #[test]
    fn per_mode_mass_of_exact_gmm8_samples_is_uniform() {
        let g = gmm8();
        let s = g.sample(&mut seeded(5), 8000).unwrap();
        let mm = per_mode_mass(&s, &g.means, 2, Some(2.0)).unwrap();
        assert!(
            mm.fractions.iter().all(|f| (f - 0.125).abs() < 0.02),
            "{mm:?}"
        );
        assert!(mm.unassigned < 1e-3 && mm.tv_from_uniform() < 0.03);
        let far = per_mode_mass(&[0.0, 0.0], &g.means, 2, Some(1.0)).unwrap();
        assert_eq!(far.unassigned, 1.0);
    }

    #[test]
    fn estimator_variance_matches_the_closed_form_behaviour() {
        let g = gmm8();
        let mut rng = seeded(6);
        let data = g.sample(&mut rng, 64).unwrap();
        let cfg = VarianceConfig {
            ts: vec![0.2, 0.8],
            n_points: 8,
            k: 64,
            reps: 32,
        };
        let truth = |xt: &[f32], t: &[f32]| g.posterior_mean_x1(&Path::Linear, xt, t);
        let bins = estimator_variance_by_t(
            &Path::Linear,
            &Estimator::Noise,
            &g,
            &data,
            Some(&truth),
            &cfg,
            &mut rng,
        )
        .unwrap();
        assert_eq!(bins.len(), 2);
        for b in &bins {
            let (mse, bias2) = (b.mse.unwrap(), b.bias2.unwrap());
            // mse = variance + bias² up to the (reps-1)/reps factor and Monte-Carlo noise.
            let recon = b.variance * (cfg.reps - 1) as f32 / cfg.reps as f32 + bias2;
            assert!((mse - recon).abs() < 1e-3 * (1.0 + mse), "{b:?}");
            assert!(b.variance > 0.0 && b.ess >= 1.0 && b.ess <= 64.0);
        }
        // Bad settings are errors.
        let bad = VarianceConfig {
            reps: 1,
            ..cfg.clone()
        };
        assert!(
            estimator_variance_by_t(
                &Path::Linear,
                &Estimator::Noise,
                &g,
                &data,
                None,
                &bad,
                &mut rng
            )
            .is_err()
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let mut rng = seeded(7);
        assert!(matches!(
            sliced_w2(&[1.0, 2.0, 3.0], &[1.0, 2.0], 2, 4, &mut rng),
            Err(MetricsError::Shape { .. })
        ));
        assert!(matches!(
            sliced_w2(&[], &[1.0, 2.0], 2, 4, &mut rng),
            Err(MetricsError::TooFew(_))
        ));
        assert!(matches!(
            sliced_w2(&[f32::NAN, 0.0], &[1.0, 2.0], 2, 4, &mut rng),
            Err(MetricsError::NonFinite { what: "a", .. })
        ));
        assert!(mmd2_rbf(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], 2, Bandwidth::Median).is_err());
        assert!(
            mmd2_rbf(
                &[1.0, 2.0, 0.0, 0.0],
                &[1.0, 2.0, 3.0, 4.0],
                2,
                Bandwidth::Fixed(0.0)
            )
            .is_err()
        );
        let g = gmm8();
        assert!(grid_kl(&g, &[0.0, 0.0], &Grid2d::square(1.0, -1.0, 10), 0.5).is_err());
        assert!(grid_kl(&g, &[0.0, 0.0], &Grid2d::square(-1.0, 1.0, 10), 0.0).is_err());
        assert!(per_mode_mass(&[0.0, 0.0], &[], 2, None).is_err());
    }
}
