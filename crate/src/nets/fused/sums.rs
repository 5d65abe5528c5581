//! The partial sums a fused training step reads back once: of its squared gradients (the
//! global-norm clip's norm) and of its rows' squared errors (the loss), from the tapes of
//! [`super::critic_step`] and [`super::actor_step`], whose last float per row is that row's
//! squared error.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;
use burn_cubecl::CubeBackend;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::{SeedRows, buffer, grid};

/// Threads of [`grad_sums_kernel`], and pairs of partial sums it writes.
pub const PARTS: usize = 256;

/// A new tensor of `shape` on `like`'s device.
pub(super) fn empty(like: &CubeTensor, shape: burn::tensor::Shape) -> CubeTensor {
    empty_device_dtype(like.client.clone(), like.device.clone(), shape, like.dtype)
}

#[backend_extension(Cube)]
pub trait SumKernels: Backend {
    /// `[seeds·2·PARTS]` partial sums, per seed: of the squared gradients, and of the tapes'
    /// (rows of `width`) last floats ([`grad_sums_kernel`]; the gradients of `seeds.n`
    /// networks stacked, the tapes' rows seed-major).
    fn fused_grad_sums(
        grads: FloatTensor<Self>,
        tape: FloatTensor<Self>,
        width: usize,
        seeds: SeedRows,
    ) -> FloatTensor<Self>;

    /// `[seeds·4]`: per seed `(loss, norm, clip factor, 0)` of a step from its partial sums
    /// ([`step_stats_kernel`]), on the device, so Adam can scale by the factor without a
    /// readback in between.
    fn fused_step_stats(
        sums: FloatTensor<Self>,
        count: f32,
        max_norm: f32,
        seeds: usize,
    ) -> FloatTensor<Self>;
}

impl SumKernels for CubeBackend {
    fn fused_grad_sums(
        grads: CubeTensor,
        tape: CubeTensor,
        width: usize,
        seeds: SeedRows,
    ) -> CubeTensor {
        let out = empty(&grads, burn::tensor::Shape::new([seeds.n * 2 * PARTS]));
        let (count, dim) = grid(seeds.n * PARTS, 64);
        grad_sums_kernel::launch(
            &out.client,
            count,
            dim,
            buffer(grads),
            buffer(tape),
            out.clone().into_buffer_arg(),
            width,
            PARTS,
            seeds.n,
            seeds.rows,
        );
        out
    }

    fn fused_step_stats(sums: CubeTensor, count: f32, max_norm: f32, seeds: usize) -> CubeTensor {
        let out = empty(&sums, burn::tensor::Shape::new([seeds * STATS]));
        let (count_cubes, dim) = grid(seeds, 64);
        step_stats_kernel::launch(
            &out.client,
            count_cubes,
            dim,
            buffer(sums),
            out.clone().into_buffer_arg(),
            count,
            max_norm,
            seeds,
        );
        out
    }
}

/// Floats of a step's stats ([`SumKernels::fused_step_stats`]): loss, norm, clip factor, and
/// one unused (a 16-byte buffer).
pub const STATS: usize = 4;

/// Where [`FusedAdam`](super::FusedAdam) reads the clip factor in a step's stats.
pub const STATS_CLIP: usize = 2;

/// One thread per seed: its partial sums' totals (in pairs: squared gradients, squared errors)
/// → its `out = [Σe / count, √Σg², clip factor, 0]`. The factor is the host's
/// `nets::host::optim::clip_scale`: `max / (norm + 1e-6)` when the norm is finite and above
/// `max`, else 1 (a non-finite step is never committed, so its factor does not matter).
#[cube(launch)]
fn step_stats_kernel(
    sums: &[f32],
    out: &mut [f32],
    count: f32,
    max_norm: f32,
    #[comptime] seeds: usize,
) {
    let seed = ABSOLUTE_POS;
    if seed >= seeds {
        terminate!();
    }
    let mut g = 0.0f32;
    let mut e = 0.0f32;
    let pairs = sums.len() / (2 * seeds);
    let at = seed * 2 * pairs;
    for k in 0..pairs {
        g += sums[at + 2 * k];
        e += sums[at + 2 * k + 1];
    }
    let norm = g.sqrt();
    let mut scale = 1.0f32;
    // `norm <= f32::MAX` is false for NaN and for infinity.
    if norm <= 3.402_823_5e38f32 && norm > max_norm {
        scale = max_norm / (norm + 1.0e-6f32);
    }
    let o = seed * comptime![STATS];
    out[o] = e / count;
    out[o + 1] = norm;
    out[o + 2] = scale;
    out[o + 3] = 0.0f32;
}

/// `parts` threads per seed: for seed `s`'s thread `t`, `out[2(s·parts + t)] = Σ grads[p]²`
/// over its gradients' `p ≡ t (mod parts)`, `out[2(s·parts + t) + 1]` the same stride of its
/// rows' squared errors (each tape row's last float). Seed `s`'s gradients are the `s`-th of
/// `seeds` equal blocks, its rows the `s`-th `rps` rows (one seed: all of them).
#[cube(launch)]
fn grad_sums_kernel(
    grads: &[f32],
    tape: &[f32],
    out: &mut [f32],
    #[comptime] width: usize,
    #[comptime] parts: usize,
    #[comptime] seeds: usize,
    #[comptime] rps: usize,
) {
    let id = ABSOLUTE_POS;
    if id >= seeds * parts {
        terminate!();
    }
    let seed = id / parts;
    let t = id % parts;
    let mut g = 0.0f32;
    let n = grads.len() / seeds;
    let g0 = seed * n;
    for k in 0..(n / parts + 1) {
        let p = k * parts + t;
        if p < n {
            let v = grads[g0 + p];
            g += v * v;
        }
    }
    let mut e = 0.0f32;
    let mut rows = tape.len() / width;
    if comptime![seeds > 1] {
        rows = rps;
    }
    let r0 = seed * rows;
    for k in 0..(rows / parts + 1) {
        let r = k * parts + t;
        if r < rows {
            e += tape[(r0 + r) * width + width - 1];
        }
    }
    out[2 * id] = g;
    out[2 * id + 1] = e;
}

/// A step's stats on the device from its partial sums (one dispatch): loss (`Σ e / count`),
/// norm and the global-norm clip's factor at `max_norm` ([`STATS`] floats; `FusedAdam` reads
/// the factor, the host reads loss and norm when it next reads anything back).
pub fn step_stats(sums: Tensor<1>, count: usize, max_norm: f32) -> Tensor<1> {
    seeds_step_stats(sums, count, max_norm, 1)
}

/// [`step_stats`] of `seeds` steps at once from their partial sums (`fused_grad_sums` of
/// stacked networks): `[seeds·STATS]`, seed by seed; `count` is one seed's.
pub fn seeds_step_stats(sums: Tensor<1>, count: usize, max_norm: f32, seeds: usize) -> Tensor<1> {
    Tensor::from_dispatch(Dispatch::fused_step_stats(
        sums.into_dispatch(),
        count as f32,
        max_norm,
        seeds,
    ))
}

/// A step's `(loss, norm)` from its stats read back ([`SumKernels::fused_step_stats`]).
pub fn stats_loss_and_norm(stats: &[f32]) -> Result<(f32, f32), String> {
    match stats {
        [loss, norm, ..] if stats.len() == STATS => Ok((*loss, *norm)),
        _ => Err(format!(
            "a step's stats are {STATS} floats, got {}",
            stats.len()
        )),
    }
}

/// The tests' reference for [`step_stats`]: `(loss, global gradient norm)` from the partial
/// sums read back: `Σ squared errors / count`
/// (the critic's `count` is its rows, as burn's `mse(q1, y) + mse(q2, y)`; the actor's its
/// rows × action width, as `mse(pred, target)`) and `√Σ g²`.
#[cfg(test)]
pub fn loss_and_norm(sums: &[f32], count: usize) -> (f32, f32) {
    let (mut g, mut e) = (0.0f64, 0.0f64);
    for pair in sums.chunks_exact(2) {
        g += f64::from(pair[0]);
        e += f64::from(pair[1]);
    }
    ((e / count as f64) as f32, g.sqrt() as f32)
}

/// The test of a fused step's outputs against burn's autodiff: every gradient within 1e-4 of
/// the largest, the loss and the norm within 1e-5 relative.
#[cfg(test)]
pub(super) fn assert_step_matches(what: &str, got: (&[f32], f32, f32), want: (&[f32], f32, f32)) {
    let ((g, loss, norm), (w, want_loss, want_norm)) = (got, want);
    assert_eq!(g.len(), w.len(), "{what}: lengths");
    let scale = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in g.iter().zip(w).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * scale,
            "{what}: grad[{i}] {x} vs {y}"
        );
    }
    assert!(
        (loss - want_loss).abs() <= 1e-5 * want_loss,
        "{what}: loss {loss} vs {want_loss}"
    );
    assert!(
        (norm - want_norm).abs() <= 1e-5 * want_norm,
        "{what}: norm {norm} vs {want_norm}"
    );
}
