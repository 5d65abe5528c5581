//! The posterior target on the device: for every point, the Boltzmann latent density of its
//! `K` candidates from the critic's `Q` and `∇ₐQ` (the output of [`super::q_and_grad`], still
//! on the device), the self-normalised weights and their ESS, the estimator's posterior means
//! and the regression target, in **one dispatch**: what `rfm::boltzmann` and
//! `rfm::estimators::estimate` compute on the host (in `f64` there, `f32` here), so the actor
//! step can read its target where it is and the update reads back once, at its end.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::{Device, Tensor};
use burn_cubecl::CubeBackend;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::sums::empty;
use super::{buffer, grid, tanh_c, upload};
use crate::rfm::estimators::Estimator;
use crate::rfm::path::Path;
use crate::rfm::posterior::Regression;

/// How [`posterior_kernel`] combines the weighted means (its comptime `mode`).
const MODE_ETA: u32 = 0;
const MODE_OPTIMAL: u32 = 1;
const MODE_ISO: u32 = 2;
const MODE_POOL: u32 = 3;

#[backend_extension(Cube)]
pub trait PosteriorKernels: Backend {
    /// `[n·d + 2n]`: the regression targets (`[n·d]`), then each point's ESS (`[n]`), then
    /// each point's first non-finite `Q` (`[n]`, `0` when all are finite); see
    /// [`posterior_kernel`].
    #[allow(clippy::too_many_arguments)]
    fn fused_posterior(
        qg: FloatTensor<Self>,
        x0: FloatTensor<Self>,
        x1: FloatTensor<Self>,
        log_iw: FloatTensor<Self>,
        xt: FloatTensor<Self>,
        coef: FloatTensor<Self>,
        n: usize,
        k: usize,
        d: usize,
        settings: PosteriorSettings,
    ) -> FloatTensor<Self>;
}

/// The estimator, temperature and regression of a [`posterior`] call, as the kernel takes them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PosteriorSettings {
    mode: u32,
    eta: f32,
    clip: f32,
    ridge: f32,
    lambda: f32,
    velocity: bool,
    with_iw: bool,
}

impl PosteriorSettings {
    /// `est` at temperature `lambda` for `regression`; `with_iw`: the proposal has a log
    /// importance weight per candidate (the latent mixture).
    pub fn new(est: &Estimator, lambda: f32, regression: Regression, with_iw: bool) -> Self {
        let (mode, eta, clip, ridge) = match *est {
            Estimator::Noise => (MODE_ETA, 0.0, 0.0, 0.0),
            Estimator::Grad => (MODE_ETA, 1.0, 0.0, 0.0),
            Estimator::Eta(e) => (MODE_ETA, e, 0.0, 0.0),
            Estimator::OptimalCv { clip, ridge } => (MODE_OPTIMAL, 0.0, clip, ridge),
            Estimator::CvIso { clip, ridge } => (MODE_ISO, 0.0, clip, ridge),
            Estimator::CvPool { clip, ridge } => (MODE_POOL, 0.0, clip, ridge),
        };
        Self {
            mode,
            eta,
            clip,
            ridge,
            lambda,
            velocity: regression == Regression::Velocity,
            with_iw,
        }
    }
}

impl PosteriorKernels for CubeBackend {
    fn fused_posterior(
        qg: CubeTensor,
        x0: CubeTensor,
        x1: CubeTensor,
        log_iw: CubeTensor,
        xt: CubeTensor,
        coef: CubeTensor,
        n: usize,
        k: usize,
        d: usize,
        s: PosteriorSettings,
    ) -> CubeTensor {
        let out = empty(&qg, burn::tensor::Shape::new([n * d + 2 * n]));
        let (count, dim) = grid(n, 64);
        posterior_kernel::launch(
            &out.client,
            count,
            dim,
            buffer(qg),
            buffer(x0),
            buffer(x1),
            buffer(log_iw),
            buffer(xt),
            buffer(coef),
            out.clone().into_buffer_arg(),
            s.lambda,
            s.eta,
            s.clip,
            s.ridge,
            k,
            d,
            s.mode,
            s.velocity,
            s.with_iw,
        );
        out
    }
}

/// `ln 2`, as a constant the kernel language inlines.
const LN_2: f32 = std::f32::consts::LN_2;

/// `log sech²(y) = 2 (ln 2 − |y| − ln(1 + e^{−2|y|}))`, stable where `tanh` saturates (as
/// `rfm::boltzmann`'s).
#[cube]
fn log_sech2(y: f32) -> f32 {
    let a = y.abs();
    2.0f32 * (LN_2 - a - (1.0f32 + (-2.0f32 * a).exp()).ln())
}

/// `clip(−num/den, −clip, clip)`, `0` where the denominator vanishes or the ratio is not
/// finite (`rfm::estimators`' `safe_coef`).
#[cube]
#[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN must take the branch
fn safe_coef(num: f32, den: f32, clip: f32) -> f32 {
    let mut c = 0.0f32;
    if den > 0.0f32 {
        c = -num / den;
    }
    // `|c| <= f32::MAX` is false for NaN and for infinity.
    if !(c.abs() <= 3.402_823_5e38f32) {
        c = 0.0f32;
    }
    if c > clip {
        c = clip;
    }
    if c < -clip {
        c = -clip;
    }
    c
}

/// One thread per point `i` with candidates `i·K … i·K + K − 1`: `qg` rows `[Q, ∇ₐQ (d)]` at
/// `a = tanh(x1)`; `log p1 = Q/λ + Σ log sech²(x1)` (+ `log_iw`), `∇ log p1 = ∇ₐQ sech²/λ −
/// 2 tanh(x1)`; softmax weights `w`, ESS `1/Σw²`; the weighted means `x̄0, x̄1, ḡ` and the
/// score mean `s̄ = ḡ + (α/β) x̄0`; then by `mode` the noise-space form
/// `μ0 = (1 − η) x̄0 − η (β/α) ḡ` or the data-space control variate `μ1 = x̄1 + c ⊙ s̄` with
/// `c` from `Σ w² (x1 − x̄1)(s − s̄)` over `Σ w² (s − s̄)²` (per dimension, shared, or shrunk
/// halfway to the shared one), the other mean from `x_t = α μ1 + β μ0`; and the target
/// `α̇ μ1 + β̇ μ0` (`velocity`) or `μ0`. `coef` rows are `[α, β, α̇, β̇]` at the point's `t`.
#[cube(launch)]
#[allow(
    clippy::too_many_arguments,
    clippy::neg_cmp_op_on_partial_ord, // NaN must take the branch
    unused_assignments
)]
fn posterior_kernel(
    qg: &[f32],
    x0: &[f32],
    x1: &[f32],
    log_iw: &[f32],
    xt: &[f32],
    coef: &[f32],
    out: &mut [f32],
    lambda: f32,
    eta: f32,
    clip: f32,
    ridge: f32,
    #[comptime] k: usize,
    #[comptime] d: usize,
    #[comptime] mode: u32,
    #[comptime] velocity: bool,
    #[comptime] with_iw: bool,
) {
    let i = ABSOLUTE_POS;
    let n = coef.len() / 4;
    if i >= n {
        terminate!();
    }
    let qw = comptime![1 + d];
    let alpha = coef[4 * i];
    let beta = coef[4 * i + 1];
    let a_over_b = alpha / beta;
    // The log weights, their maximum, the first non-finite Q.
    let mut w = Array::<f32>::new(k);
    let mut mx = 0.0f32;
    let mut qbad = 0.0f32;
    for kk in 0..k {
        let r = i * k + kk;
        let q = qg[r * qw];
        if !(q.abs() <= 3.402_823_5e38f32) && qbad == 0.0f32 {
            qbad = q;
        }
        let mut lp = q / lambda;
        for j in 0..d {
            lp += log_sech2(x1[r * d + j]);
        }
        if with_iw {
            lp += log_iw[r];
        }
        w[kk] = lp;
        if kk == 0 || lp > mx {
            mx = lp;
        }
    }
    let mut z = 0.0f32;
    for kk in 0..k {
        let e = (w[kk] - mx).exp();
        w[kk] = e;
        z += e;
    }
    let mut sw2 = 0.0f32;
    for kk in 0..k {
        let v = w[kk] / z;
        w[kk] = v;
        sw2 += v * v;
    }
    // Per dimension: the means, then (data-space forms) the covariance and variance sums.
    let mut x0bar = Array::<f32>::new(d);
    let mut x1bar = Array::<f32>::new(d);
    let mut gbar = Array::<f32>::new(d);
    let mut num = Array::<f32>::new(d);
    let mut den = Array::<f32>::new(d);
    for j in 0..d {
        let mut a0 = 0.0f32;
        let mut a1 = 0.0f32;
        let mut ag = 0.0f32;
        for kk in 0..k {
            let r = i * k + kk;
            let u = x1[r * d + j];
            let g = qg[r * qw + 1 + j] * log_sech2(u).exp() / lambda - 2.0f32 * tanh_c(u);
            a0 += w[kk] * x0[r * d + j];
            a1 += w[kk] * u;
            ag += w[kk] * g;
        }
        x0bar[j] = a0;
        x1bar[j] = a1;
        gbar[j] = ag;
        let sbar = ag + a_over_b * a0;
        let mut cn = 0.0f32;
        let mut cd = 0.0f32;
        if comptime![mode != MODE_ETA] {
            for kk in 0..k {
                let r = i * k + kk;
                let u = x1[r * d + j];
                let g = qg[r * qw + 1 + j] * log_sech2(u).exp() / lambda - 2.0f32 * tanh_c(u);
                let ds = g + a_over_b * x0[r * d + j] - sbar;
                let w2 = w[kk] * w[kk];
                cn += w2 * (u - a1) * ds;
                cd += w2 * ds * ds;
            }
        }
        num[j] = cn;
        den[j] = cd;
    }
    let mut num_all = 0.0f32;
    let mut den_all = 0.0f32;
    for j in 0..d {
        num_all += num[j];
        den_all += den[j];
    }
    let alpha_dot = coef[4 * i + 2];
    let beta_dot = coef[4 * i + 3];
    let df = comptime![d as f32];
    for j in 0..d {
        let x = xt[i * d + j];
        let mut mu0 = 0.0f32;
        let mut mu1 = 0.0f32;
        if comptime![mode == MODE_ETA] {
            mu0 = (1.0f32 - eta) * x0bar[j] - eta * (beta / alpha) * gbar[j];
            mu1 = (x - beta * mu0) / alpha;
        } else {
            let mut c = 0.0f32;
            if comptime![mode == MODE_OPTIMAL] {
                c = safe_coef(num[j], den[j] + ridge, clip);
            }
            if comptime![mode == MODE_ISO] {
                c = safe_coef(num_all, den_all + df * ridge, clip);
            }
            if comptime![mode == MODE_POOL] {
                c = safe_coef(
                    0.5f32 * (num[j] + num_all / df),
                    0.5f32 * (den[j] + den_all / df) + ridge,
                    clip,
                );
            }
            mu1 = x1bar[j] + c * (gbar[j] + a_over_b * x0bar[j]);
            mu0 = (x - alpha * mu1) / beta;
        }
        if velocity {
            out[i * d + j] = alpha_dot * mu1 + beta_dot * mu0;
        } else {
            out[i * d + j] = mu0;
        }
    }
    out[n * d + i] = 1.0f32 / sw2;
    out[n * d + n + i] = qbad;
}

/// The posterior targets of `n` points (`xt [n·d]`, `t [n]` on `path`) from their `K`
/// candidates (`x0`, `x1` `[n·K·d]`, `log_iw [n·K]`, or one unused float without importance
/// weights) and the critic's rows `qg` (`[n·K, 1 + d]` from [`super::q_and_grad`] at
/// `tanh(x1)`), all on the device (uploads, or [`super::candidates`]' and
/// [`super::pick`]'s outputs): **one dispatch**, nothing read back. The result is `[n·d + 2n]`:
/// the regression targets, the ESS per point, the first non-finite `Q` per point (`0` when
/// none); [`posterior_out`] splits it once read.
#[allow(clippy::too_many_arguments)]
pub fn posterior(
    qg: Tensor<2>,
    cand: (Tensor<1>, Tensor<1>, Tensor<1>),
    xt: Tensor<1>,
    t: &[f32],
    path: &Path,
    k: usize,
    settings: PosteriorSettings,
    device: &Device,
) -> Tensor<1> {
    let (x0, x1, log_iw) = cand;
    let n = t.len();
    let d = xt.dims()[0] / n.max(1);
    let coef: Vec<f32> = t
        .iter()
        .flat_map(|&ti| {
            let c = path.coeffs(ti);
            [c.alpha, c.beta, c.alpha_dot, c.beta_dot]
        })
        .collect();
    let rows = qg.dims()[0];
    Tensor::from_dispatch(Dispatch::fused_posterior(
        qg.reshape([rows * (1 + d)]).into_dispatch(),
        x0.into_dispatch(),
        x1.into_dispatch(),
        log_iw.into_dispatch(),
        xt.into_dispatch(),
        upload(coef, device).into_dispatch(),
        n,
        k,
        d,
        settings,
    ))
}

/// A [`posterior`] result read back, for `n` points of dimension `d`.
#[derive(Clone, Debug, PartialEq)]
pub struct PosteriorOut {
    /// `[n·d]` regression targets.
    pub target: Vec<f32>,
    /// `[n]` effective sample sizes.
    pub ess: Vec<f32>,
    /// The first non-finite `Q` at the candidates, if any.
    pub bad_q: Option<f32>,
}

/// Split a [`posterior`] result read back (`[n·d + 2n]`).
pub fn posterior_out(v: &[f32], n: usize, d: usize) -> Result<PosteriorOut, String> {
    if v.len() != n * d + 2 * n {
        return Err(format!(
            "a posterior of {n} points of dimension {d} is {} floats, got {}",
            n * d + 2 * n,
            v.len()
        ));
    }
    Ok(PosteriorOut {
        target: v[..n * d].to_vec(),
        ess: v[n * d..n * d + n].to_vec(),
        bad_q: v[n * d + n..].iter().copied().find(|&q| q != 0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{ComputeDevice, read_f32};
    use crate::rfm::boltzmann::boltzmann_latent_log_prob_grad;
    use crate::rfm::estimators::{PosteriorBatch, estimate};
    use crate::rfm::proposal::{Proposal, draw_candidates_from};
    use crate::rng::{self, seeded};
    use burn::tensor::TensorData;

    /// Every estimator, both regressions (flow on the linear path, diffusion on VP) and both
    /// proposals: the kernel's targets and ESS against the host pipeline's (`f64` there) on the
    /// same candidates and critic values, within 1e-3 of the larger of the value and 1.
    #[test]
    fn matches_the_host_estimators_for_every_form() {
        let dev = pollster::block_on(ComputeDevice::webgpu())
            .expect("a wgpu adapter (e.g. mesa-vulkan-drivers)");
        let device = dev.device();
        let (n, k, d, lambda) = (7, 16, 2, 0.3f32);
        let mut rng = seeded(5);
        let names = ["rfm", "noise", "grad", "eta:0.3", "cv-iso", "cv-pool"];
        for (path, regression) in [
            (Path::Linear, Regression::Velocity),
            (Path::Vp, Regression::Noise),
        ] {
            for proposal in [Proposal::Prior, Proposal::LATENT_MIXTURE] {
                let t: Vec<f32> = (0..n).map(|i| 0.05 + 0.14 * i as f32).collect();
                let xt = rng::normals(&mut rng, n * d);
                let cand = draw_candidates_from(&proposal, &path, &xt, &t, n, k, d, &mut rng);
                // Q: a smooth bowl with a tilt, its gradient in a; rows [Q, ∇ₐQ].
                let a: Vec<f32> = cand.x1.iter().map(|u| u.tanh()).collect();
                let (mut q, mut gq, mut qg) = (Vec::new(), Vec::new(), Vec::new());
                for row in a.chunks(d) {
                    let v = -2.0 * (row[0] - 0.3).powi(2) - (row[1] + 0.2).powi(2) + row[0];
                    let g = [-4.0 * (row[0] - 0.3) + 1.0, -2.0 * (row[1] + 0.2)];
                    q.push(v);
                    gq.extend_from_slice(&g);
                    qg.push(v);
                    qg.extend_from_slice(&g);
                }
                let mut logp = vec![0.0; n * k];
                let mut grad = vec![0.0; n * k * d];
                boltzmann_latent_log_prob_grad(&q, &gq, &cand.x1, lambda, &mut logp, &mut grad)
                    .unwrap();
                let batch = PosteriorBatch {
                    n,
                    k,
                    d,
                    xt: &xt,
                    t: &t,
                    x0: &cand.x0,
                    x1: &cand.x1,
                    logp1: &logp,
                    grad_logp1: &grad,
                    log_iw: &cand.log_iw,
                };
                for name in names {
                    let est = Estimator::from_name(name).unwrap();
                    let want = estimate(&path, &est, &batch).unwrap();
                    let want_target = regression.target(&path, &t, &want.mu0, &want.mu1, n, d);
                    let qg_t =
                        Tensor::<2>::from_data(TensorData::new(qg.clone(), [n * k, 1 + d]), device);
                    let settings =
                        PosteriorSettings::new(&est, lambda, regression, !cand.log_iw.is_empty());
                    let log_iw = match cand.log_iw.is_empty() {
                        true => vec![0.0],
                        false => cand.log_iw.clone(),
                    };
                    let up = |v: Vec<f32>| upload(v, device);
                    let got = posterior(
                        qg_t,
                        (up(cand.x0.clone()), up(cand.x1.clone()), up(log_iw)),
                        up(xt.clone()),
                        &t,
                        &path,
                        k,
                        settings,
                        device,
                    );
                    let got =
                        posterior_out(&pollster::block_on(read_f32(got)).unwrap(), n, d).unwrap();
                    let what = format!("{path:?} {proposal:?} {name}");
                    assert_eq!(got.bad_q, None, "{what}");
                    for (i, (x, y)) in got.target.iter().zip(&want_target).enumerate() {
                        assert!(
                            (x - y).abs() <= 1e-3 * y.abs().max(1.0),
                            "{what}: target[{i}] {x} vs {y}"
                        );
                    }
                    for (i, (x, y)) in got.ess.iter().zip(&want.ess).enumerate() {
                        assert!((x - y).abs() <= 1e-3 * y, "{what}: ESS[{i}] {x} vs {y}");
                    }
                }
            }
        }
    }

    /// A non-finite `Q` at a candidate is reported for its point, and only there.
    #[test]
    fn reports_the_first_non_finite_q_of_a_point() {
        let dev = pollster::block_on(ComputeDevice::webgpu())
            .expect("a wgpu adapter (e.g. mesa-vulkan-drivers)");
        let device = dev.device();
        let (n, k, d) = (3, 4, 1);
        let t = vec![0.5; n];
        let xt = vec![0.1; n * d];
        let x0 = vec![0.2; n * k * d];
        let x1 = vec![0.0; n * k * d];
        let mut qg = vec![0.5; n * k * (1 + d)];
        qg[(k + 2) * (1 + d)] = f32::INFINITY;
        let qg = Tensor::<2>::from_data(TensorData::new(qg, [n * k, 1 + d]), device);
        let settings =
            PosteriorSettings::new(&Estimator::default(), 1.0, Regression::Velocity, false);
        let up = |v: Vec<f32>| upload(v, device);
        let out = posterior(
            qg,
            (up(x0), up(x1), up(vec![0.0])),
            up(xt),
            &t,
            &Path::Linear,
            k,
            settings,
            device,
        );
        let v = pollster::block_on(read_f32(out)).unwrap();
        assert_eq!(&v[n * d + n..], &[0.0, f32::INFINITY, 0.0]);
        assert_eq!(posterior_out(&v, n, d).unwrap().bad_q, Some(f32::INFINITY));
        assert!(posterior_out(&v[1..], n, d).is_err());
    }
}
