//! The partial sums a fused training step reads back once: of its squared gradients (the
//! global-norm clip's norm) and of its rows' squared errors (the loss), from the tapes of
//! [`super::critic_step`] and [`super::actor_step`], whose last float per row is that row's
//! squared error.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};
use burn_cubecl::CubeBackend;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::{buffer, grid};

/// Threads of [`grad_sums_kernel`], and pairs of partial sums it writes.
pub const PARTS: usize = 256;

/// A new tensor of `shape` on `like`'s device.
pub(super) fn empty(like: &CubeTensor, shape: burn::tensor::Shape) -> CubeTensor {
    empty_device_dtype(like.client.clone(), like.device.clone(), shape, like.dtype)
}

#[backend_extension(Cube)]
pub trait SumKernels: Backend {
    /// `[2·PARTS]` partial sums: of the squared gradients, and of the tapes' (rows of `width`)
    /// last floats ([`grad_sums_kernel`]).
    fn fused_grad_sums(
        grads: FloatTensor<Self>,
        tape: FloatTensor<Self>,
        width: usize,
    ) -> FloatTensor<Self>;
}

impl SumKernels for CubeBackend {
    fn fused_grad_sums(grads: CubeTensor, tape: CubeTensor, width: usize) -> CubeTensor {
        let out = empty(&grads, burn::tensor::Shape::new([2 * PARTS]));
        let (count, dim) = grid(PARTS, 64);
        grad_sums_kernel::launch(
            &out.client,
            count,
            dim,
            buffer(grads),
            buffer(tape),
            out.clone().into_buffer_arg(),
            width,
            PARTS,
        );
        out
    }
}

/// `parts` threads: `out[2t] = Σ grads[p]²` over `p ≡ t (mod parts)`, `out[2t + 1]` the same
/// stride of the rows' squared errors (each tape row's last float).
#[cube(launch)]
fn grad_sums_kernel(
    grads: &[f32],
    tape: &[f32],
    out: &mut [f32],
    #[comptime] width: usize,
    #[comptime] parts: usize,
) {
    let t = ABSOLUTE_POS;
    if t >= parts {
        terminate!();
    }
    let mut g = 0.0f32;
    let n = grads.len();
    for k in 0..(n / parts + 1) {
        let p = k * parts + t;
        if p < n {
            g += grads[p] * grads[p];
        }
    }
    let mut e = 0.0f32;
    let rows = tape.len() / width;
    for k in 0..(rows / parts + 1) {
        let r = k * parts + t;
        if r < rows {
            e += tape[r * width + width - 1];
        }
    }
    out[2 * t] = g;
    out[2 * t + 1] = e;
}

/// `(loss, global gradient norm)` from the partial sums read back: `Σ squared errors / count`
/// (the critic's `count` is its rows, as burn's `mse(q1, y) + mse(q2, y)`; the actor's its
/// rows × action width, as `mse(pred, target)`) and `√Σ g²`.
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
