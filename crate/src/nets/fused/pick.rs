//! The on-policy pick and the posterior's points on the device: what the host does between
//! the scored sampling and the posterior in `trainer::rfm` (steps (1), (2) and (4)), so that
//! one RFM update reads back once.
//!
//! - [`pick`] (one dispatch): per state, the softmax(`Q/λ`) pick among its `C` scored
//!   candidates (`trainer::pick_with`, with the uniforms drawn ahead); for the batch states
//!   the points `x_t = α y1 + β y0` on the path (`rfm::posterior::interpolate`) and the
//!   actor's input rows `(s, x_t)`, for the next states `a' = tanh(y1')`;
//! - [`candidates`] (one dispatch): the posterior's `K` candidates of every point from
//!   standard normals drawn ahead, `tanh(x1)` for the critic, and the mixture's log importance
//!   weights (`rfm::proposal::draw_candidates_with`, in `f32` here, `f64` there).

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::{Device, Shape, Tensor};
use burn_cubecl::CubeBackend;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::sums::empty;
use super::{buffer, grid, tanh_c, upload};
use crate::rfm::path::Path;
use crate::rfm::proposal::Proposal;

/// `f32::MAX`, as a constant the kernel language inlines.
const F32_MAX: f32 = 3.402_823_5e38;

#[backend_extension(Cube)]
pub trait PickKernels: Backend {
    /// `(x_t [n·d], a' [n·d], rows [n·(obs + d)])` from the scored samples of `2n` states
    /// (`[2n·c, d + 1]`), `draws` (`[u (2n) | α, β (2n) | y0 (n·d)]`) and the states' `obs`
    /// (`[n·obs]`): [`pick_kernel`].
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn fused_pick(
        sampled: FloatTensor<Self>,
        draws: FloatTensor<Self>,
        obs: FloatTensor<Self>,
        n: usize,
        c: usize,
        d: usize,
        o: usize,
        lambda: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `(x0, x1, tanh(x1)) [n·k·d]` and `log_iw [n·k]` (one float without the mixture) from
    /// `xt [n·d]` and `draws` (`[α, β (2n) | z (n·k·d)]`): [`candidates_kernel`].
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn fused_candidates(
        xt: FloatTensor<Self>,
        draws: FloatTensor<Self>,
        n: usize,
        k: usize,
        d: usize,
        mix: Mix,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    );
}

/// A [`Proposal`] as [`candidates_kernel`] takes it: how many of the `K` come from the prior,
/// the data-space scale and the mixture's log shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mix {
    k_prior: usize,
    scale: f32,
    ln_prior_share: f32,
    ln_data_share: f32,
}

impl Mix {
    /// `proposal` with `k` candidates per point (`Proposal::split`).
    pub fn new(proposal: &Proposal, k: usize) -> Self {
        let (scale, k_data) = proposal.split(k);
        let share = k_data as f64 / k.max(1) as f64;
        Self {
            k_prior: k - k_data,
            scale,
            ln_prior_share: (1.0 - share).ln() as f32,
            ln_data_share: share.ln() as f32,
        }
    }

    /// Candidates from the data-space Gaussian, hence log importance weights.
    pub fn with_iw(&self, k: usize) -> bool {
        self.k_prior < k
    }
}

impl PickKernels for CubeBackend {
    fn fused_pick(
        sampled: CubeTensor,
        draws: CubeTensor,
        obs: CubeTensor,
        n: usize,
        c: usize,
        d: usize,
        o: usize,
        lambda: f32,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        let xt = empty(&draws, Shape::new([n * d]));
        let a_next = empty(&draws, Shape::new([n * d]));
        let rows = empty(&draws, Shape::new([n * (o + d)]));
        let (count, dim) = grid(2 * n, 64);
        pick_kernel::launch(
            &draws.client,
            count,
            dim,
            buffer(sampled),
            buffer(draws.clone()),
            buffer(obs),
            xt.clone().into_buffer_arg(),
            a_next.clone().into_buffer_arg(),
            rows.clone().into_buffer_arg(),
            lambda,
            c,
            d,
            o,
        );
        (xt, a_next, rows)
    }

    fn fused_candidates(
        xt: CubeTensor,
        draws: CubeTensor,
        n: usize,
        k: usize,
        d: usize,
        mix: Mix,
    ) -> (CubeTensor, CubeTensor, CubeTensor, CubeTensor) {
        let with_iw = mix.with_iw(k);
        let x0 = empty(&draws, Shape::new([n * k * d]));
        let x1 = empty(&draws, Shape::new([n * k * d]));
        let a = empty(&draws, Shape::new([n * k * d]));
        let log_iw = empty(&draws, Shape::new([if with_iw { n * k } else { 1 }]));
        let (count, dim) = grid(n * k, 64);
        candidates_kernel::launch(
            &draws.client,
            count,
            dim,
            buffer(xt),
            buffer(draws.clone()),
            x0.clone().into_buffer_arg(),
            x1.clone().into_buffer_arg(),
            a.clone().into_buffer_arg(),
            log_iw.clone().into_buffer_arg(),
            mix.scale,
            mix.ln_prior_share,
            mix.ln_data_share,
            k,
            d,
            mix.k_prior,
            with_iw,
        );
        (x0, x1, a, log_iw)
    }
}

/// One thread per state `r < 2n`, its `c` candidates the rows `r·c …` of `sampled`
/// (`[y (d), Q]` each). The best is the first maximal `Q` above `−∞` (the first candidate when
/// there is none); when that `Q` is finite, the pick is the first `j` with
/// `u·Σw − Σ_{i≤j} w_i < 0`, `w_i = exp((Q_i − Q_max)/λ)`, else (a NaN weight) the best.
/// A state `r < n` writes `x_t = α y + β y0` and the row `(s, x_t)`; a next state
/// `r = n + i` writes `a'_i = tanh(y)`.
#[cube(launch)]
#[allow(
    clippy::too_many_arguments,
    clippy::neg_cmp_op_on_partial_ord, // NaN must take the branch
    unused_assignments
)]
fn pick_kernel(
    sampled: &[f32],
    draws: &[f32],
    obs: &[f32],
    xt: &mut [f32],
    a_next: &mut [f32],
    rows: &mut [f32],
    lambda: f32,
    #[comptime] c: usize,
    #[comptime] d: usize,
    #[comptime] o: usize,
) {
    let r = ABSOLUTE_POS;
    let n = xt.len() / d;
    if r >= 2 * n {
        terminate!();
    }
    let w = comptime![d + 1];
    let base = r * c;
    let mut best = 0;
    let mut qmax = 0.0f32;
    let mut found = 0.0f32;
    for j in 0..c {
        let v = sampled[(base + j) * w + d];
        if found == 0.0f32 {
            // Above −∞ and not NaN.
            if v >= -F32_MAX {
                qmax = v;
                best = j;
                found = 1.0f32;
            }
        } else if v > qmax {
            qmax = v;
            best = j;
        }
    }
    let mut pick = best;
    if found == 1.0f32 && qmax <= F32_MAX {
        let mut total = 0.0f32;
        for j in 0..c {
            total += ((sampled[(base + j) * w + d] - qmax) / lambda).exp();
        }
        let mut u = draws[r] * total;
        let mut open = 1.0f32;
        for j in 0..c {
            if open == 1.0f32 {
                u -= ((sampled[(base + j) * w + d] - qmax) / lambda).exp();
                if u < 0.0f32 {
                    pick = j;
                    open = 0.0f32;
                }
            }
        }
    }
    let y_at = (base + pick) * w;
    if r < n {
        let alpha = draws[2 * n + 2 * r];
        let beta = draws[2 * n + 2 * r + 1];
        let width = comptime![o + d];
        for j in 0..o {
            rows[r * width + j] = obs[r * o + j];
        }
        for j in 0..d {
            let x = alpha * sampled[y_at + j] + beta * draws[4 * n + r * d + j];
            xt[r * d + j] = x;
            rows[r * width + o + j] = x;
        }
    } else {
        for j in 0..d {
            a_next[(r - n) * d + j] = tanh_c(sampled[y_at + j]);
        }
    }
}

/// One thread per candidate `i·K + kk` of point `i`: from `z = draws[2n + (i·K + kk)·d …]`,
/// a prior candidate (`kk < k_prior`) is `x0 = z`, `x1 = (x_t − β x0)/α`; a data-space one is
/// `x1 = scale·z`, `x0 = (x_t − α x1)/β`; with `with_iw`, `log r_prior(x1) − log r_mix(x1)`
/// as `rfm::proposal`'s `mixture_log_iw` (constants common to a point dropped).
#[cube(launch)]
#[allow(clippy::too_many_arguments, unused_assignments)]
fn candidates_kernel(
    xt: &[f32],
    draws: &[f32],
    x0: &mut [f32],
    x1: &mut [f32],
    a: &mut [f32],
    log_iw: &mut [f32],
    scale: f32,
    ln_prior_share: f32,
    ln_data_share: f32,
    #[comptime] k: usize,
    #[comptime] d: usize,
    #[comptime] k_prior: usize,
    #[comptime] with_iw: bool,
) {
    let idx = ABSOLUTE_POS;
    let n = xt.len() / d;
    if idx >= n * k {
        terminate!();
    }
    let i = idx / k;
    let kk = idx % k;
    let alpha = draws[2 * i];
    let beta = draws[2 * i + 1];
    let mut s0 = 0.0f32;
    let mut s1 = 0.0f32;
    for j in 0..d {
        let o = idx * d + j;
        let z = draws[2 * n + o];
        let x = xt[i * d + j];
        let mut v0 = z;
        let mut v1 = (x - beta * z) / alpha;
        if kk >= k_prior {
            v1 = scale * z;
            v0 = (x - alpha * v1) / beta;
        }
        x0[o] = v0;
        x1[o] = v1;
        a[o] = tanh_c(v1);
        s0 += v0 * v0;
        s1 += v1 * v1;
    }
    if with_iw {
        let df = comptime![d as f32];
        let lp = -0.5f32 * s0 - df * (beta / alpha).ln();
        let ld = -0.5f32 * s1 / (scale * scale) - df * scale.ln();
        let u = ln_prior_share + lp;
        let v = ln_data_share + ld;
        let mut hi = u;
        if v > u {
            hi = v;
        }
        let lmix = hi + (1.0f32 + (-(u - v).abs()).exp()).ln();
        log_iw[idx] = lp - lmix;
    }
}

/// The path's `[α, β]` at each `t`, the layout the kernels read.
fn alpha_beta(path: &Path, t: &[f32]) -> Vec<f32> {
    t.iter()
        .flat_map(|&ti| {
            let c = path.coeffs(ti);
            [c.alpha, c.beta]
        })
        .collect()
}

/// [`pick`]'s results, on the device.
pub struct Picked {
    /// `[n·d]` points `x_t` on the path.
    pub xt: Tensor<1>,
    /// `[n·d]` next actions `a' = tanh(y1')`.
    pub a_next: Tensor<1>,
    /// `[n·(obs + d)]` the actor's input rows `(s, x_t)`.
    pub rows: Tensor<1>,
}

/// The on-policy pick of `2n` states (the batch's, then the next ones) from `sampled`, the
/// scored samples [`super::sample`] returns (`[2n·c, d + 1]`), with one uniform `u [2n]` per
/// state, and the points `x_t` of the batch states at times `t [n]` on `path` with noise
/// `y0 [n·d]`; `obs [n·o]` are the batch states: **one dispatch**, nothing read back.
#[allow(clippy::too_many_arguments)]
pub fn pick(
    sampled: Tensor<2>,
    (u, t, y0): (&[f32], &[f32], &[f32]),
    obs: &[f32],
    path: &Path,
    c: usize,
    lambda: f32,
    device: &Device,
) -> Picked {
    let n = t.len();
    let d = y0.len() / n.max(1);
    let o = obs.len() / n.max(1);
    let mut draws = Vec::with_capacity(4 * n + n * d);
    draws.extend_from_slice(u);
    draws.extend(alpha_beta(path, t));
    draws.extend_from_slice(y0);
    let rows = sampled.dims()[0];
    let obs = if o > 0 { obs.to_vec() } else { vec![0.0] };
    let (xt, a_next, rows) = Dispatch::fused_pick(
        sampled.reshape([rows * (d + 1)]).into_dispatch(),
        upload(draws, device).into_dispatch(),
        upload(obs, device).into_dispatch(),
        n,
        c,
        d,
        o,
        lambda,
    );
    Picked {
        xt: Tensor::from_dispatch(xt),
        a_next: Tensor::from_dispatch(a_next),
        rows: Tensor::from_dispatch(rows),
    }
}

/// [`candidates`]'s results, on the device.
pub struct FusedCandidates {
    /// `[n·k·d]` noise candidates.
    pub x0: Tensor<1>,
    /// `[n·k·d]` endpoints.
    pub x1: Tensor<1>,
    /// `[n·k·d]` `tanh(x1)`, the critic's actions.
    pub a: Tensor<1>,
    /// `[n·k]` log importance weights (one float for the prior).
    pub log_iw: Tensor<1>,
    /// Whether `log_iw` holds weights (some candidates come from the data-space Gaussian).
    pub with_iw: bool,
}

/// The `k` candidates of each point `xt` (`[n·d]` on the device) at times `t` on `path` from
/// `proposal`, on the standard normals `z` (`[n·k·d]`, drawn as `draw_candidates_from` does):
/// **one dispatch**, nothing read back.
pub fn candidates(
    xt: Tensor<1>,
    t: &[f32],
    z: Vec<f32>,
    (path, proposal): (&Path, &Proposal),
    k: usize,
    device: &Device,
) -> FusedCandidates {
    let n = t.len();
    let d = xt.dims()[0] / n.max(1);
    let mut draws = alpha_beta(path, t);
    draws.extend(z);
    let mix = Mix::new(proposal, k);
    let (x0, x1, a, log_iw) = Dispatch::fused_candidates(
        xt.into_dispatch(),
        upload(draws, device).into_dispatch(),
        n,
        k,
        d,
        mix,
    );
    FusedCandidates {
        x0: Tensor::from_dispatch(x0),
        x1: Tensor::from_dispatch(x1),
        a: Tensor::from_dispatch(a),
        log_iw: Tensor::from_dispatch(log_iw),
        with_iw: mix.with_iw(k),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{close, gpu, read};
    use super::*;
    use crate::rfm::posterior::interpolate;
    use crate::rfm::proposal::draw_candidates_with;
    use crate::rng::{self, seeded};
    use crate::trainer::pick_with;
    use burn::tensor::TensorData;

    /// The pick, `x_t`, the rows and `a'` against the host's `pick_with` and `interpolate` on
    /// the same numbers, with the edge cases of the scores: a NaN among them, all `−∞`, a
    /// `+∞`, ties.
    #[test]
    fn picks_and_interpolates_as_the_host() {
        let dev = gpu();
        let device = dev.device();
        let (n, c, d, o, lambda) = (6, 5, 2, 3, 0.4f32);
        let mut r = seeded(3);
        let y = rng::normals(&mut r, 2 * n * c * d);
        let mut q = rng::normals(&mut r, 2 * n * c);
        q[c + 2] = f32::NAN;
        q[2 * c..3 * c].fill(f32::NEG_INFINITY);
        q[3 * c + 1] = f32::INFINITY;
        q[4 * c..5 * c].fill(0.25);
        let u: Vec<f32> = (0..2 * n).map(|_| rng::uniform(&mut r, 0.0, 1.0)).collect();
        let t: Vec<f32> = (0..n).map(|_| rng::uniform(&mut r, 0.01, 0.99)).collect();
        let y0 = rng::normals(&mut r, n * d);
        let obs = rng::normals(&mut r, n * o);
        let mut sampled = Vec::new();
        for (row, qi) in y.chunks(d).zip(&q) {
            sampled.extend_from_slice(row);
            sampled.push(*qi);
        }
        let picks = pick_with(&q, c, lambda, Some(&u));
        assert_eq!(picks[2], 0, "all −∞: the first candidate");
        assert_eq!(picks[3], 1, "+∞: the argmax");
        let y1: Vec<f32> = picks
            .iter()
            .enumerate()
            .flat_map(|(i, p)| y[(i * c + p) * d..(i * c + p + 1) * d].to_vec())
            .collect();
        for path in [Path::Linear, Path::Vp] {
            let want_xt = interpolate(&path, &y1[..n * d], &y0, &t, d);
            let want_a: Vec<f32> = y1[n * d..].iter().map(|v| v.tanh()).collect();
            let mut want_rows = Vec::new();
            for (s, x) in obs.chunks(o).zip(want_xt.chunks(d)) {
                want_rows.extend_from_slice(s);
                want_rows.extend_from_slice(x);
            }
            let st = Tensor::<2>::from_data(
                TensorData::new(sampled.clone(), [2 * n * c, d + 1]),
                device,
            );
            let got = pick(st, (&u, &t, &y0), &obs, &path, c, lambda, device);
            close(&read(got.xt), &want_xt, 1e-6, "x_t");
            close(&read(got.a_next), &want_a, 1e-6, "a'");
            close(&read(got.rows), &want_rows, 1e-6, "rows");
        }
    }

    /// The candidates and their mixture weights against `draw_candidates_with` on the same
    /// normals (its `f64` arithmetic), for the prior and the latent mixture on both paths.
    #[test]
    fn draws_the_candidates_as_the_host() {
        let dev = gpu();
        let device = dev.device();
        let (n, k, d) = (5, 8, 2);
        let mut r = seeded(4);
        let t: Vec<f32> = (0..n).map(|i| 0.03 + 0.2 * i as f32).collect();
        let xt = rng::normals(&mut r, n * d);
        let z = rng::normals(&mut r, n * k * d);
        for path in [Path::Linear, Path::Vp] {
            for proposal in [Proposal::Prior, Proposal::LATENT_MIXTURE] {
                let what = format!("{path:?} {proposal:?}");
                let want = draw_candidates_with(&proposal, &path, &xt, &t, n, k, d, z.clone());
                let got = candidates(
                    upload(xt.clone(), device),
                    &t,
                    z.clone(),
                    (&path, &proposal),
                    k,
                    device,
                );
                close(&read(got.x0), &want.x0, 1e-4, &format!("{what} x0"));
                close(&read(got.x1), &want.x1, 1e-4, &format!("{what} x1"));
                let a: Vec<f32> = want.x1.iter().map(|v| v.tanh()).collect();
                close(&read(got.a), &a, 1e-5, &format!("{what} tanh(x1)"));
                assert_eq!(got.with_iw, !want.log_iw.is_empty(), "{what}: with_iw");
                let iw = read(got.log_iw);
                if want.log_iw.is_empty() {
                    assert_eq!(iw.len(), 1, "{what}: no weights for the prior");
                } else {
                    assert!(want.log_iw.iter().any(|v| v.abs() > 0.1), "{what}");
                    close(&iw, &want.log_iw, 1e-4, &format!("{what} log_iw"));
                }
            }
        }
    }
}
