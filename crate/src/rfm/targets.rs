//! Unnormalised target log densities `log p1(x)` with their gradients, batched over rows.
//!
//! - [`LogDensity`]: the one trait the estimators and metrics need (`log p1` and `∇ log p1` for
//!   `m` points of dimension `d`, row-major), plus exact sampling where it exists.
//! - [`Target`]: the named 2-D energies of the sampler mode (`p1 ∝ exp(-E)`), built by
//!   [`Target::from_name`]:
//!
//! | name | density | exact samples | source |
//! |---|---|---|---|
//! | `gmm8` | 8 equal-weight `N(m_k, 0.5² I)`, `m_k = 4 (cos 2πk/8, sin 2πk/8)` | yes | classic ring of Gaussians |
//! | `two-moons` | `-½((‖x‖-2)/0.2)² + log(e^{-½((x₀-2)/0.3)²} + e^{-½((x₀+2)/0.3)²})` | rejection | `TwoMoons` of normflows (Stimper et al.), the toy energy of flow/sampler papers |
//! | `rings` | `logsumexp_{r∈{1,2}} -(‖x‖-r)²/(2·0.125²)` | rejection | `RingMixture(n_rings=2)` of normflows |
//! | `gmm40` | 40 equal-weight `N(m_k, σ² I)`, `σ = softplus(1) ≈ 1.3133`, means in `[-40, 40]²` | yes | FAB (Midgley et al. 2023) / iDEM (Akhound-Sadegh et al. 2024) `GMM(dim=2, n_mixes=40, loc_scaling=40, log_var_scaling=1)` |
//!
//! The `gmm40` means are `(torch.rand(40, 2) - 0.5) · 80` after `torch.manual_seed(0)`, which
//! a Rust RNG cannot reproduce; they are embedded as constants ([`GMM40_MEANS`], rounded to
//! 4 decimals as published in a public JAX port of that benchmark). Note the FAB/iDEM code's
//! "log_var_scaling = 1" means the component *scale* is `softplus(1)`, not unit variance.
//!
//! - The Boltzmann policy target in a tanh latent ([`boltzmann_latent_log_prob_grad`],
//!   [`TanhLatent`]): `log p1(u) = Q(s, tanh u)/λ + Σ_j log sech²(u_j)`.

use std::f64::consts::{LN_2, PI};

use super::path::Path;
use crate::rng::{self, Rng};

/// Errors from target construction and checked evaluation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetError {
    /// A name that no target has.
    #[error("unknown target '{name}' (valid: {valid})")]
    UnknownName { name: String, valid: String },
    /// A slice with the wrong length.
    #[error("shape mismatch for {what}: expected {expected} values, got {got}")]
    Shape {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// The Boltzmann temperature must be a positive finite number.
    #[error("lambda must be finite and > 0, got {0}")]
    BadLambda(f32),
    /// NaN or infinity in an input.
    #[error("non-finite value in {what} at index {index}")]
    NonFinite { what: &'static str, index: usize },
    /// Any other invalid parameter.
    #[error("invalid target parameter: {0}")]
    BadParam(String),
}

/// An unnormalised log density on `R^d` with its gradient.
pub trait LogDensity {
    /// Dimension `d` of one point.
    fn dim(&self) -> usize;

    /// For `m = logp.len()` points `x` (`[m * d]`, row-major) write `log p(x)` into `logp`
    /// (`[m]`) and `∇_x log p(x)` into `grad` (`[m * d]`). Lengths must agree (implementations
    /// panic otherwise; use [`LogDensity::evaluate`] for a checked call).
    fn log_prob_grad(&self, x: &[f32], logp: &mut [f32], grad: &mut [f32]);

    /// `n` exact samples (`[n * d]`) where the target can be sampled exactly, else `None`.
    fn sample(&self, _rng: &mut Rng, _n: usize) -> Option<Vec<f32>> {
        None
    }

    /// Checked, allocating evaluation: `(logp [m], grad [m * d])` for `x` of `[m * d]`.
    fn evaluate(&self, x: &[f32]) -> Result<(Vec<f32>, Vec<f32>), TargetError> {
        let d = self.dim();
        if d == 0 || !x.len().is_multiple_of(d) {
            return Err(TargetError::Shape {
                what: "x (a multiple of dim)",
                expected: d * x.len().div_ceil(d.max(1)),
                got: x.len(),
            });
        }
        check_finite("x", x)?;
        let m = x.len() / d;
        let mut logp = vec![0.0; m];
        let mut grad = vec![0.0; m * d];
        self.log_prob_grad(x, &mut logp, &mut grad);
        Ok((logp, grad))
    }
}

pub(crate) fn check_finite(what: &'static str, v: &[f32]) -> Result<(), TargetError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(TargetError::NonFinite { what, index }),
        None => Ok(()),
    }
}

pub(crate) fn check_len(what: &'static str, v: &[f32], expected: usize) -> Result<(), TargetError> {
    if v.len() == expected {
        Ok(())
    } else {
        Err(TargetError::Shape {
            what,
            expected,
            got: v.len(),
        })
    }
}

pub(crate) fn assert_shapes(d: usize, x: &[f32], logp: &[f32], grad: &[f32]) {
    let m = logp.len();
    assert!(
        x.len() == m * d && grad.len() == m * d,
        "log_prob_grad: x [{}] and grad [{}] must both be [m*d] = [{}*{}]",
        x.len(),
        grad.len(),
        m,
        d
    );
}

/// `log(e^a + e^b)` without overflow.
pub fn logaddexp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// `log sech²(y) = -2 (logaddexp(y, -y) - log 2)`, stable for any finite `y`
/// (`≈ -2|y| + 2 log 2` for large `|y|`). Its derivative is `-2 tanh(y)`.
pub fn log_sech2(y: f64) -> f64 {
    let a = y.abs();
    -2.0 * (a + (-2.0 * a).exp().ln_1p() - LN_2)
}

// ---------------------------------------------------------------- Gaussian mixtures ---

/// Equal-weight isotropic Gaussian mixture `Σ_k (1/K) N(m_k, std² I)` (normalised).
/// With one component this is the Gaussian `N(m, std² I)` used by the closed-form tests.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianMixture {
    /// Dimension `d`.
    pub dim: usize,
    /// Component means, `[n_components * d]`.
    pub means: Vec<f32>,
    /// Component standard deviation (shared, isotropic).
    pub std: f32,
}

impl GaussianMixture {
    /// A mixture from its means (`[K * dim]`) and shared std; errors on empty or bad values.
    pub fn new(dim: usize, means: Vec<f32>, std: f32) -> Result<Self, TargetError> {
        if dim == 0 || means.is_empty() || !means.len().is_multiple_of(dim) {
            return Err(TargetError::BadParam(format!(
                "mixture needs dim > 0 and a non-empty [K*dim] means vector (dim {dim}, {} values)",
                means.len()
            )));
        }
        check_finite("means", &means)?;
        if !(std.is_finite() && std > 0.0) {
            return Err(TargetError::BadParam(format!(
                "std must be finite and > 0, got {std}"
            )));
        }
        Ok(Self { dim, means, std })
    }

    /// `N(mean, std² I)`.
    pub fn gaussian(mean: Vec<f32>, std: f32) -> Result<Self, TargetError> {
        Self::new(mean.len(), mean, std)
    }

    /// Number of components `K`.
    pub fn n_components(&self) -> usize {
        self.means.len() / self.dim
    }

    /// Closed-form posterior mean `E[X1 | X_t = x_t]` on `path` (`[n * d]`) for points
    /// `xt` (`[n * d]`) at times `t` (`[n]`, clipped like the path). With
    /// `σ = beta/alpha`, the likelihood of `x1` is `N(x1; x_t/alpha, σ² I)`, so the posterior is
    /// a mixture with weights `∝ N(x_t/alpha; m_k, (s² + σ²) I)` and component means
    /// `(σ² m_k + s² x_t/alpha) / (s² + σ²)`.
    pub fn posterior_mean_x1(&self, path: &Path, xt: &[f32], t: &[f32]) -> Vec<f32> {
        let d = self.dim;
        let n = t.len();
        assert_eq!(xt.len(), n * d, "posterior_mean_x1: xt must be [n*d]");
        let s2 = (self.std as f64).powi(2);
        let kc = self.n_components();
        let mut out = vec![0.0; n * d];
        let mut logw = vec![0.0f64; kc];
        for i in 0..n {
            let c = path.coeffs(t[i]);
            let (a, b) = (c.alpha as f64, c.beta as f64);
            let sig2 = (b / a).powi(2);
            let y: Vec<f64> = xt[i * d..(i + 1) * d]
                .iter()
                .map(|&v| v as f64 / a)
                .collect();
            for (k, lw) in logw.iter_mut().enumerate() {
                let m = &self.means[k * d..(k + 1) * d];
                let sq: f64 = y
                    .iter()
                    .zip(m)
                    .map(|(yj, &mj)| (yj - mj as f64).powi(2))
                    .sum();
                *lw = -0.5 * sq / (s2 + sig2);
            }
            let mx = logw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = logw.iter().map(|l| (l - mx).exp()).sum();
            for j in 0..d {
                let mut acc = 0.0;
                for (k, lw) in logw.iter().enumerate() {
                    let m = self.means[k * d + j] as f64;
                    acc += (lw - mx).exp() / z * (sig2 * m + s2 * y[j]) / (s2 + sig2);
                }
                out[i * d + j] = acc as f32;
            }
        }
        out
    }
}

impl LogDensity for GaussianMixture {
    fn dim(&self) -> usize {
        self.dim
    }

    fn log_prob_grad(&self, x: &[f32], logp: &mut [f32], grad: &mut [f32]) {
        let d = self.dim;
        assert_shapes(d, x, logp, grad);
        let kc = self.n_components();
        let s2 = (self.std as f64).powi(2);
        let log_norm = -(kc as f64).ln() - 0.5 * d as f64 * (2.0 * PI * s2).ln();
        let mut lc = vec![0.0f64; kc];
        for (i, lp) in logp.iter_mut().enumerate() {
            let xi = &x[i * d..(i + 1) * d];
            for (k, l) in lc.iter_mut().enumerate() {
                let m = &self.means[k * d..(k + 1) * d];
                let sq: f64 = xi
                    .iter()
                    .zip(m)
                    .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                    .sum();
                *l = -0.5 * sq / s2;
            }
            let mx = lc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = lc.iter().map(|l| (l - mx).exp()).sum();
            *lp = (log_norm + mx + z.ln()) as f32;
            let g = &mut grad[i * d..(i + 1) * d];
            for j in 0..d {
                let mut acc = 0.0;
                for (k, l) in lc.iter().enumerate() {
                    let r = (l - mx).exp() / z;
                    acc += r * (self.means[k * d + j] as f64 - xi[j] as f64);
                }
                g[j] = (acc / s2) as f32;
            }
        }
    }

    fn sample(&self, rng: &mut Rng, n: usize) -> Option<Vec<f32>> {
        use rand::Rng as _;
        let d = self.dim;
        let kc = self.n_components();
        let mut out = rng::normals(rng, n * d);
        for row in out.chunks_mut(d) {
            let k = rng.random_range(0..kc);
            for (j, v) in row.iter_mut().enumerate() {
                *v = self.means[k * d + j] + self.std * *v;
            }
        }
        Some(out)
    }
}

/// The 40 `gmm40` means (`[40 * 2]`): FAB/iDEM's `(torch.rand(40, 2) - 0.5) * 80` after
/// `torch.manual_seed(0)`, rounded to 4 decimals.
pub const GMM40_MEANS: [[f32; 2]; 40] = [
    [-0.2995, 21.4577],
    [-32.9218, -29.4376],
    [-15.4062, 10.7263],
    [-0.7925, 31.7156],
    [-3.5498, 10.5845],
    [-12.0885, -7.8626],
    [-38.2139, -26.4913],
    [-16.4889, 1.4817],
    [15.8134, 24.0009],
    [-27.1176, -17.4185],
    [14.5287, 33.2155],
    [-8.232, 29.9325],
    [-6.4473, 4.2326],
    [36.219, -37.1068],
    [-25.1815, -10.1266],
    [-15.592, 34.56],
    [-25.9272, -18.4133],
    [-27.9456, -37.4624],
    [-23.3496, 34.3839],
    [17.8487, 19.3869],
    [2.1037, -20.5073],
    [6.7674, -37.3478],
    [-28.9026, -20.6212],
    [25.2375, 23.4529],
    [-17.7398, -1.4433],
    [25.5824, 39.7653],
    [15.8753, 5.4037],
    [26.8195, -23.5521],
    [7.4538, -31.0122],
    [-27.7234, -20.6633],
    [18.0989, 16.0864],
    [-23.6941, 12.0843],
    [21.9589, -5.0487],
    [1.5273, 9.2682],
    [24.8151, 38.4078],
    [-30.8249, -14.6588],
    [15.7204, 33.142],
    [34.8083, 35.2943],
    [7.9606, -34.7833],
    [3.6797, -25.0242],
];

/// `gmm8`: 8 equal-weight `N(m_k, 0.5² I)`, `m_k = 4 (cos 2πk/8, sin 2πk/8)`, first at `(4, 0)`.
pub fn gmm8() -> GaussianMixture {
    let means = (0..8)
        .flat_map(|k| {
            let a = 2.0 * PI * k as f64 / 8.0;
            [(4.0 * a.cos()) as f32, (4.0 * a.sin()) as f32]
        })
        .collect();
    GaussianMixture {
        dim: 2,
        means,
        std: 0.5,
    }
}

/// `gmm40`: FAB/iDEM's 40-mode 2-D mixture (scale `softplus(1)`), see [`GMM40_MEANS`].
pub fn gmm40() -> GaussianMixture {
    GaussianMixture {
        dim: 2,
        means: GMM40_MEANS.iter().flatten().copied().collect(),
        std: (1.0f64.exp().ln_1p()) as f32,
    }
}

// ---------------------------------------------------------------- 2-D energies ---

/// Two moons (normflows `TwoMoons`):
/// `log p = -½((‖x‖-2)/0.2)² + logaddexp(-½((x₀-2)/0.3)², -½((x₀+2)/0.3)²)` (unnormalised;
/// `max log p ≈ 0`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TwoMoons;

impl LogDensity for TwoMoons {
    fn dim(&self) -> usize {
        2
    }

    fn log_prob_grad(&self, x: &[f32], logp: &mut [f32], grad: &mut [f32]) {
        assert_shapes(2, x, logp, grad);
        for (i, lp) in logp.iter_mut().enumerate() {
            let (x0, x1) = (x[2 * i] as f64, x[2 * i + 1] as f64);
            let r = (x0 * x0 + x1 * x1).sqrt();
            let radial = -0.5 * ((r - 2.0) / 0.2).powi(2);
            // d radial / dx = -(r - 2)/0.04 · x/r (0 at the origin, where it is not smooth).
            let dr = if r > 0.0 { -(r - 2.0) / 0.04 / r } else { 0.0 };
            let la = -0.5 * ((x0 - 2.0) / 0.3).powi(2);
            let lb = -0.5 * ((x0 + 2.0) / 0.3).powi(2);
            let l = logaddexp(la, lb);
            let (wa, wb) = ((la - l).exp(), (lb - l).exp());
            let dl = -(wa * (x0 - 2.0) + wb * (x0 + 2.0)) / 0.09;
            *lp = (radial + l) as f32;
            grad[2 * i] = (dr * x0 + dl) as f32;
            grad[2 * i + 1] = (dr * x1) as f32;
        }
    }

    fn sample(&self, rng: &mut Rng, n: usize) -> Option<Vec<f32>> {
        // The density lives within radius 2 ± 1 (5 radial stds); the bound on log p is log 2.
        Some(rejection_sample_2d(self, rng, n, 3.0, LN_2))
    }
}

/// Two concentric rings of radii 1 and 2, radial std 0.125 (normflows `RingMixture`,
/// `n_rings = 2`): `log p = logsumexp_{r∈{1,2}} -(‖x‖-r)²/(2·0.125²)` (unnormalised; the outer
/// ring carries about twice the inner ring's mass).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rings;

/// Ring radii of [`Rings`].
pub const RING_RADII: [f64; 2] = [1.0, 2.0];
/// Radial std of [`Rings`].
pub const RING_STD: f64 = 0.125;

impl LogDensity for Rings {
    fn dim(&self) -> usize {
        2
    }

    fn log_prob_grad(&self, x: &[f32], logp: &mut [f32], grad: &mut [f32]) {
        assert_shapes(2, x, logp, grad);
        let s2 = RING_STD * RING_STD;
        for (i, lp) in logp.iter_mut().enumerate() {
            let (x0, x1) = (x[2 * i] as f64, x[2 * i + 1] as f64);
            let r = (x0 * x0 + x1 * x1).sqrt();
            let la = -(r - RING_RADII[0]).powi(2) / (2.0 * s2);
            let lb = -(r - RING_RADII[1]).powi(2) / (2.0 * s2);
            let l = logaddexp(la, lb);
            let (wa, wb) = ((la - l).exp(), (lb - l).exp());
            let dldr = -(wa * (r - RING_RADII[0]) + wb * (r - RING_RADII[1])) / s2;
            let f = if r > 0.0 { dldr / r } else { 0.0 };
            *lp = l as f32;
            grad[2 * i] = (f * x0) as f32;
            grad[2 * i + 1] = (f * x1) as f32;
        }
    }

    fn sample(&self, rng: &mut Rng, n: usize) -> Option<Vec<f32>> {
        Some(rejection_sample_2d(
            self,
            rng,
            n,
            2.0 + 6.0 * RING_STD as f32,
            LN_2,
        ))
    }
}

/// Rejection sampling from a 2-D density on the box `[-half, half]²` with uniform proposals,
/// given an upper bound on `log p`. Exact as long as the box holds the mass and the bound holds.
fn rejection_sample_2d(
    target: &dyn LogDensity,
    rng: &mut Rng,
    n: usize,
    half: f32,
    log_bound: f64,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * 2);
    let batch = 256;
    let mut x = vec![0.0f32; batch * 2];
    let mut lp = vec![0.0f32; batch];
    let mut g = vec![0.0f32; batch * 2];
    while out.len() < n * 2 {
        for v in x.iter_mut() {
            *v = rng::uniform(rng, -half, half);
        }
        target.log_prob_grad(&x, &mut lp, &mut g);
        for i in 0..batch {
            let u = rng::uniform(rng, 0.0, 1.0) as f64;
            if u.ln() < lp[i] as f64 - log_bound && out.len() < n * 2 {
                out.extend_from_slice(&x[2 * i..2 * i + 2]);
            }
        }
    }
    out
}

/// A named 2-D energy of the sampler mode.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// See [`gmm8`].
    Gmm8(GaussianMixture),
    /// See [`TwoMoons`].
    TwoMoons,
    /// See [`Rings`].
    Rings,
    /// See [`gmm40`].
    Gmm40(GaussianMixture),
}

impl Target {
    /// Every valid name, in display order.
    pub const NAMES: [&'static str; 4] = ["gmm8", "two-moons", "rings", "gmm40"];

    /// Build a target by its stable name (see the module table).
    pub fn from_name(name: &str) -> Result<Self, TargetError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "gmm8" => Ok(Target::Gmm8(gmm8())),
            "two-moons" | "two_moons" | "moons" => Ok(Target::TwoMoons),
            "rings" => Ok(Target::Rings),
            "gmm40" => Ok(Target::Gmm40(gmm40())),
            _ => Err(TargetError::UnknownName {
                name: name.to_string(),
                valid: Self::NAMES.join(", "),
            }),
        }
    }

    /// Stable name.
    pub fn name(&self) -> &'static str {
        match self {
            Target::Gmm8(_) => "gmm8",
            Target::TwoMoons => "two-moons",
            Target::Rings => "rings",
            Target::Gmm40(_) => "gmm40",
        }
    }

    /// Mode centres `[n_modes * 2]` for per-mode mass, where the target is a mixture.
    pub fn modes(&self) -> Option<&[f32]> {
        match self {
            Target::Gmm8(g) | Target::Gmm40(g) => Some(&g.means),
            _ => None,
        }
    }

    /// The mixture itself (for closed-form posterior means), where the target is one.
    pub fn mixture(&self) -> Option<&GaussianMixture> {
        match self {
            Target::Gmm8(g) | Target::Gmm40(g) => Some(g),
            _ => None,
        }
    }

    /// A square box `(lo, hi)` holding essentially all the mass (for grids and plots).
    pub fn bounds(&self) -> (f32, f32) {
        match self {
            Target::Gmm8(_) => (-7.0, 7.0),
            Target::TwoMoons => (-3.0, 3.0),
            Target::Rings => (-3.0, 3.0),
            Target::Gmm40(_) => (-50.0, 50.0),
        }
    }

    fn inner(&self) -> &dyn LogDensity {
        match self {
            Target::Gmm8(g) | Target::Gmm40(g) => g,
            Target::TwoMoons => &TwoMoons,
            Target::Rings => &Rings,
        }
    }
}

impl LogDensity for Target {
    fn dim(&self) -> usize {
        2
    }
    fn log_prob_grad(&self, x: &[f32], logp: &mut [f32], grad: &mut [f32]) {
        self.inner().log_prob_grad(x, logp, grad)
    }
    fn sample(&self, rng: &mut Rng, n: usize) -> Option<Vec<f32>> {
        self.inner().sample(rng, n)
    }
}

pub use super::boltzmann::{TanhLatent, boltzmann_latent_log_prob_grad};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;

    /// Central-difference check of `log_prob_grad` at the given points (f32 evaluation).
    fn check_grad_fd(t: &dyn LogDensity, pts: &[f32], h: f32, rtol: f32) {
        let d = t.dim();
        let (_, g) = t.evaluate(pts).unwrap();
        for i in 0..pts.len() / d {
            for j in 0..d {
                let mut p = pts[i * d..(i + 1) * d].to_vec();
                p[j] += h;
                let (lp, _) = t.evaluate(&p).unwrap();
                p[j] -= 2.0 * h;
                let (lm, _) = t.evaluate(&p).unwrap();
                let fd = (lp[0] - lm[0]) / (2.0 * h);
                let an = g[i * d + j];
                assert!(
                    (fd - an).abs() <= rtol * (1.0 + an.abs()),
                    "point {i} dim {j}: analytic {an} vs fd {fd}"
                );
            }
        }
    }

    fn random_points(rng: &mut Rng, m: usize, d: usize, scale: f32) -> Vec<f32> {
        rng::normals(rng, m * d)
            .into_iter()
            .map(|v| v * scale)
            .collect()
    }

    #[test]
    fn energies_gradients_match_finite_differences() {
        let mut rng = seeded(3);
        for name in Target::NAMES {
            let t = Target::from_name(name).unwrap();
            let (lo, hi) = t.bounds();
            let pts: Vec<f32> = (0..40)
                .map(|_| rng::uniform(&mut rng, lo * 0.8, hi * 0.8))
                .collect();
            check_grad_fd(&t, &pts, 1e-3 * (hi - lo), 2e-2);
        }
    }

    #[test]
    fn gmm8_log_density_is_normalised_and_gradient_is_exact_at_a_mode() {
        let g = gmm8();
        // At a mode the gradient is (almost) zero; the density there is ≈ 1/(8·2π·0.25).
        let (lp, gr) = g.evaluate(&[4.0, 0.0]).unwrap();
        assert!(gr[0].abs() < 1e-4 && gr[1].abs() < 1e-4, "{gr:?}");
        let expect = -(8.0f64 * 2.0 * PI * 0.25).ln();
        assert!(
            (lp[0] as f64 - expect).abs() < 1e-4,
            "{} vs {expect}",
            lp[0]
        );
        // Riemann sum of the density over [-8, 8]² ≈ 1.
        let n = 160;
        let h = 16.0 / n as f32;
        let pts: Vec<f32> = (0..n * n)
            .flat_map(|c| {
                [
                    -8.0 + h * ((c % n) as f32 + 0.5),
                    -8.0 + h * ((c / n) as f32 + 0.5),
                ]
            })
            .collect();
        let (lp, _) = g.evaluate(&pts).unwrap();
        let mass: f64 = lp.iter().map(|&l| (l as f64).exp()).sum::<f64>() * (h * h) as f64;
        assert!((mass - 1.0).abs() < 1e-3, "mass {mass}");
    }

    #[test]
    fn gmm8_sampling_puts_one_eighth_on_each_mode() {
        let g = gmm8();
        let n = 16_000;
        let s = g.sample(&mut seeded(11), n).unwrap();
        let mut counts = [0usize; 8];
        for p in s.chunks(2) {
            let k = (0..8)
                .min_by(|&a, &b| {
                    let da = (p[0] - g.means[2 * a]).powi(2) + (p[1] - g.means[2 * a + 1]).powi(2);
                    let db = (p[0] - g.means[2 * b]).powi(2) + (p[1] - g.means[2 * b + 1]).powi(2);
                    da.total_cmp(&db)
                })
                .unwrap();
            counts[k] += 1;
        }
        // Binomial sd of a fraction: sqrt(1/8 · 7/8 / 16000) ≈ 0.0026; allow 5 sd.
        for c in counts {
            let f = c as f64 / n as f64;
            assert!((f - 0.125).abs() < 0.013, "{counts:?}");
        }
    }

    #[test]
    fn rejection_samplers_land_where_the_density_is() {
        let mut rng = seeded(5);
        for t in [Target::TwoMoons, Target::Rings] {
            let s = t.sample(&mut rng, 4000).unwrap();
            let (lp, _) = t.evaluate(&s).unwrap();
            let mean_lp = lp.iter().map(|&v| v as f64).sum::<f64>() / lp.len() as f64;
            // Typical set: within a couple of stds of the ridge (mean of -½z² over z ~ N is -½).
            assert!(
                mean_lp > -1.5,
                "{}: mean log p of samples {mean_lp}",
                t.name()
            );
        }
        // Rings: outer ring has about twice the inner ring's mass.
        let s = Target::Rings.sample(&mut rng, 8000).unwrap();
        let outer = s.chunks(2).filter(|p| (p[0].hypot(p[1])) > 1.5).count() as f64 / 8000.0;
        assert!((outer - 2.0 / 3.0).abs() < 0.03, "outer fraction {outer}");
    }

    #[test]
    fn gmm40_matches_the_published_definition() {
        let g = gmm40();
        assert_eq!(g.n_components(), 40);
        assert!((g.std - 1.3132617).abs() < 1e-6);
        assert!(g.means.iter().all(|m| m.abs() <= 40.0));
        assert_eq!(&g.means[..2], &[-0.2995, 21.4577]);
    }

    #[test]
    fn log_sech2_is_stable_and_matches_its_definition() {
        for y in [-30.0f64, -3.0, -0.5, 0.0, 0.7, 4.0, 400.0] {
            let direct = (1.0 / y.cosh()).powi(2).ln();
            let v = log_sech2(y);
            assert!(v.is_finite());
            if y.abs() < 50.0 {
                assert!((v - direct).abs() < 1e-9, "y={y}: {v} vs {direct}");
            }
        }
        assert!((log_sech2(400.0) - (-800.0 + 2.0 * LN_2)).abs() < 1e-9);
    }

    #[test]
    fn tanh_latent_gradient_matches_finite_differences() {
        // Quadratic Q: log N(a; (0.3, -0.6), 0.4²) at temperature 0.5.
        let q = GaussianMixture::gaussian(vec![0.3, -0.6], 0.4).unwrap();
        let t = TanhLatent::new(q, 0.5).unwrap();
        let pts = random_points(&mut seeded(9), 30, 2, 1.5);
        check_grad_fd(&t, &pts, 1e-3, 1e-2);
    }

    #[test]
    fn boltzmann_latent_rejects_bad_input() {
        let mut lp = [0.0; 1];
        let mut g = [0.0; 2];
        for lam in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let e = boltzmann_latent_log_prob_grad(
                &[1.0],
                &[0.0, 0.0],
                &[0.1, 0.2],
                lam,
                &mut lp,
                &mut g,
            )
            .unwrap_err();
            assert!(matches!(e, TargetError::BadLambda(_)), "{e}");
            assert!(e.to_string().contains("lambda"));
        }
        let e = boltzmann_latent_log_prob_grad(&[1.0], &[0.0], &[0.1, 0.2], 1.0, &mut lp, &mut g)
            .unwrap_err();
        assert!(e.to_string().contains("grad_q"), "{e}");
        let e = boltzmann_latent_log_prob_grad(
            &[f32::NAN],
            &[0.0, 0.0],
            &[0.1, 0.2],
            1.0,
            &mut lp,
            &mut g,
        )
        .unwrap_err();
        assert!(matches!(e, TargetError::NonFinite { what: "q", .. }), "{e}");
        assert!(TanhLatent::new(gmm8(), -0.1).is_err());
        // Saturated latents stay finite.
        boltzmann_latent_log_prob_grad(&[1.0], &[3.0, -2.0], &[60.0, -60.0], 0.02, &mut lp, &mut g)
            .unwrap();
        assert!(lp[0].is_finite() && g.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn unknown_target_name_lists_valid_ones() {
        let e = Target::from_name("banana").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("banana") && msg.contains("gmm8, two-moons, rings, gmm40"),
            "{msg}"
        );
        for n in Target::NAMES {
            assert_eq!(Target::from_name(n).unwrap().name(), n);
        }
        assert!(gmm8().evaluate(&[1.0, 2.0, 3.0]).is_err());
        assert!(gmm8().evaluate(&[1.0, f32::NAN]).is_err());
    }

    #[test]
    fn closed_form_posterior_of_a_gaussian() {
        // One component: posterior mean (σ² m + s² xt/α)/(s² + σ²).
        let g = GaussianMixture::gaussian(vec![1.0, -2.0], 0.5).unwrap();
        let xt = [0.4, 0.1];
        let t = 0.6f32;
        let pm = g.posterior_mean_x1(&Path::Linear, &xt, &[t]);
        let (a, b) = (0.6f64, 0.4f64);
        let sig2 = (b / a) * (b / a);
        for j in 0..2 {
            let m = g.means[j] as f64;
            let expect = (sig2 * m + 0.25 * xt[j] as f64 / a) / (0.25 + sig2);
            assert!((pm[j] as f64 - expect).abs() < 1e-5);
        }
    }
}
