//! The twin critic's training step on WebGPU in **three dispatches**, in place of burn's
//! autodiff forward and backward (~45 dispatches at any width: a matrix product, a bias, an
//! activation and their backward steps per layer, the loss, the gradient concatenation):
//!
//! 1. [`critic_tape_kernel`], one thread per row: both ReLU heads forward at `(s, a)`, the
//!    residual against the TD target `y`, then each head's backward pass to its layers'
//!    pre-activations. It writes the row's *tape*: every hidden activation `h_l`, every
//!    pre-activation gradient `δ_l`, the output gradient `∂L/∂q = 2(q − y)/n`, and the row's
//!    squared errors.
//! 2. [`critic_grads_kernel`], one thread per parameter of the packed critic
//!    ([`FusedCritic`]'s layout, which is the module's visit order and so `FusedAdam`'s): a
//!    weight's gradient is `Σ_rows input_i · δ_j`, a bias's `Σ_rows δ_j`.
//! 3. [`super::sums`]: partial sums of the squared gradients and of the rows' squared errors;
//!    the host adds them up after the one readback the step already had (loss and norm, for
//!    the finite check and the clip).
//!
//! The loss is burn's `mse(q1, y) + mse(q2, y)` and the gradients its autodiff's (ReLU's
//! derivative zero at `z ≤ 0`), so the parity suite compares this step with the host kernels'
//! and `tests` below with burn's autodiff on the CPU.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::{Device, Tensor};
use burn_cubecl::CubeBackend;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::sums::{SumKernels, empty};
use super::{
    FusedCritic, SeedRows, at, buffer, grid, past_block, row_grid, row_seed, seed_row, upload,
};

/// Floats of a row's tape for a critic of `layers` hidden layers of `hidden` units: per head
/// the activations, the pre-activation gradients and `∂L/∂q`, then the row's squared errors.
fn tape_width(hidden: usize, layers: usize) -> usize {
    2 * (2 * layers * hidden + 1) + 1
}

#[backend_extension(Cube)]
pub trait CriticStepKernels: Backend {
    /// The rows' tapes `[rows, tape_width]` ([`critic_tape_kernel`]) from `s [rows·obs]` (one
    /// float when `obs == 0`), `a [rows·act]`, the TD target `y [rows]` and the packed critic;
    /// `inv_n = 1/rows` travels in the launch's scalar block.
    #[allow(clippy::too_many_arguments)]
    fn fused_critic_tape(
        s: FloatTensor<Self>,
        a: FloatTensor<Self>,
        y: FloatTensor<Self>,
        critic: FloatTensor<Self>,
        rows: usize,
        obs: usize,
        act: usize,
        hidden: usize,
        layers: usize,
        seeds: SeedRows,
    ) -> FloatTensor<Self>;

    /// Every parameter's gradient `[params]` in the packed layout from the rows' inputs and
    /// tapes ([`critic_grads_kernel`]).
    #[allow(clippy::too_many_arguments)]
    fn fused_critic_grads(
        s: FloatTensor<Self>,
        a: FloatTensor<Self>,
        tape: FloatTensor<Self>,
        params: usize,
        obs: usize,
        act: usize,
        hidden: usize,
        layers: usize,
        seeds: SeedRows,
    ) -> FloatTensor<Self>;
}

impl CriticStepKernels for CubeBackend {
    fn fused_critic_tape(
        s: CubeTensor,
        a: CubeTensor,
        y: CubeTensor,
        critic: CubeTensor,
        rows: usize,
        obs: usize,
        act: usize,
        hidden: usize,
        layers: usize,
        seeds: SeedRows,
    ) -> CubeTensor {
        let width = tape_width(hidden, layers);
        let tape = empty(&a, burn::tensor::Shape::new([rows, width]));
        let (count, dim) = row_grid(rows, seeds, 64);
        critic_tape_kernel::launch(
            &tape.client,
            count,
            dim,
            buffer(s),
            buffer(a),
            buffer(y),
            buffer(critic),
            tape.clone().into_buffer_arg(),
            1.0 / (rows / seeds.n) as f32,
            obs,
            act,
            hidden,
            layers,
            seeds.n,
            seeds.rows,
        );
        tape
    }

    fn fused_critic_grads(
        s: CubeTensor,
        a: CubeTensor,
        tape: CubeTensor,
        params: usize,
        obs: usize,
        act: usize,
        hidden: usize,
        layers: usize,
        seeds: SeedRows,
    ) -> CubeTensor {
        let grads = empty(&tape, burn::tensor::Shape::new([params]));
        let (count, dim) = grid(params, 64);
        critic_grads_kernel::launch(
            &grads.client,
            count,
            dim,
            buffer(s),
            buffer(a),
            buffer(tape),
            grads.clone().into_buffer_arg(),
            obs,
            act,
            hidden,
            layers,
            seeds.n,
            seeds.rows,
        );
        grads
    }
}

/// One thread per row (see the module docs). Tape of a row, per head `hd` at
/// `hd·(2·layers·ch + 1)`: `h_l` at `l·ch`, `δ_l` at `(layers + l)·ch`, `∂L/∂q` at
/// `2·layers·ch`; the row's `Σ_heads (q − y)²` last.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn critic_tape_kernel(
    s: &[f32],
    a: &[f32],
    y: &[f32],
    critic: &[f32],
    tape: &mut [f32],
    inv_n: f32,
    #[comptime] obs: usize,
    #[comptime] act: usize,
    #[comptime] ch: usize,
    #[comptime] layers: usize,
    #[comptime] seeds: usize,
    #[comptime] rps: usize,
) {
    let row = seed_row(seeds, rps);
    let seed = row_seed(seeds);
    let outside = past_block(seeds, rps);
    if row >= y.len() {
        terminate!();
    }
    if outside {
        terminate!();
    }
    // This row's seed's critic (`SeedRows`).
    let wq = seed * (critic.len() / seeds);
    let input = comptime![obs + act];
    let head = comptime![(obs + act + 1) * ch + (layers - 1) * (ch * ch + ch) + ch + 1];
    let hw = comptime![2 * layers * ch + 1];
    let width = comptime![2 * (2 * layers * ch + 1) + 1];
    let dl = comptime![layers * ch];
    // Pre-activations of every hidden layer of the current head, and δ of one layer.
    let mut z = Array::<f32>::new(comptime![layers * ch]);
    let mut g = Array::<f32>::new(ch);
    let mut g2 = Array::<f32>::new(ch);
    let target = y[row];
    let mut sq = 0.0f32;
    for hd in 0..2usize {
        let base = hd * head;
        let tb = row * width + hd * hw;
        for k in 0..ch {
            let mut acc = critic[at(wq, base + input * ch + k, seeds)];
            for m in 0..obs {
                acc += s[row * obs + m] * critic[at(wq, base + m * ch + k, seeds)];
            }
            for j in 0..act {
                acc += a[row * act + j] * critic[at(wq, base + (obs + j) * ch + k, seeds)];
            }
            z[k] = acc;
            let mut h = acc;
            if h < 0.0f32 {
                h = 0.0f32;
            }
            tape[tb + k] = h;
        }
        for l in 1..layers {
            let off = base + (input + 1) * ch + (l - 1) * (ch * ch + ch);
            for k in 0..ch {
                let mut acc = critic[at(wq, off + ch * ch + k, seeds)];
                for m in 0..ch {
                    let mut h = z[(l - 1) * ch + m];
                    if h < 0.0f32 {
                        h = 0.0f32;
                    }
                    acc += h * critic[at(wq, off + m * ch + k, seeds)];
                }
                z[l * ch + k] = acc;
                let mut h = acc;
                if h < 0.0f32 {
                    h = 0.0f32;
                }
                tape[tb + l * ch + k] = h;
            }
        }
        let off = base + (input + 1) * ch + (layers - 1) * (ch * ch + ch);
        let mut q = critic[at(wq, off + ch, seeds)];
        for m in 0..ch {
            let mut h = z[(layers - 1) * ch + m];
            if h < 0.0f32 {
                h = 0.0f32;
            }
            q += h * critic[at(wq, off + m, seeds)];
        }
        let e = q - target;
        sq += e * e;
        let dq = 2.0f32 * e * inv_n;
        tape[tb + 2 * dl] = dq;
        // δ of the last hidden layer, then down through the hidden layers' weights.
        for m in 0..ch {
            let mut v = 0.0f32;
            if z[(layers - 1) * ch + m] > 0.0f32 {
                v = dq * critic[at(wq, off + m, seeds)];
            }
            g[m] = v;
            tape[tb + dl + (layers - 1) * ch + m] = v;
        }
        for r in 1..layers {
            let l = layers - r;
            let off = base + (input + 1) * ch + (l - 1) * (ch * ch + ch);
            for m in 0..ch {
                let mut v = 0.0f32;
                if z[(l - 1) * ch + m] > 0.0f32 {
                    for k in 0..ch {
                        v += critic[at(wq, off + m * ch + k, seeds)] * g[k];
                    }
                }
                g2[m] = v;
                tape[tb + dl + (l - 1) * ch + m] = v;
            }
            for m in 0..ch {
                g[m] = g2[m];
            }
        }
    }
    tape[row * width + width - 1] = sq;
}

/// One thread per parameter `p` of the packed critic: head `p / head`, then within the head
/// the first layer's weight `[input, ch]` and bias, each further hidden layer's `[ch, ch]` and
/// bias, the output's `[ch]` and bias. A weight `(i, j)` of layer `l` sums `x_i · δ_l,j` over
/// the rows (`x`: the row's `(s, a)` for the first layer, `h_{l−1}` after), a bias `δ_l,j`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn critic_grads_kernel(
    s: &[f32],
    a: &[f32],
    tape: &[f32],
    grads: &mut [f32],
    #[comptime] obs: usize,
    #[comptime] act: usize,
    #[comptime] ch: usize,
    #[comptime] layers: usize,
    #[comptime] seeds: usize,
    #[comptime] rps: usize,
) {
    let id = ABSOLUTE_POS;
    if id >= grads.len() {
        terminate!();
    }
    // Seed `id / params`'s parameter `p`, summed over that seed's rows (`SeedRows`: seed-major).
    let params = grads.len() / seeds;
    let p = id % params;
    let input = comptime![obs + act];
    let head = comptime![(obs + act + 1) * ch + (layers - 1) * (ch * ch + ch) + ch + 1];
    let hw = comptime![2 * layers * ch + 1];
    let width = comptime![2 * (2 * layers * ch + 1) + 1];
    let dl = comptime![layers * ch];
    let lw = comptime![ch * ch + ch];
    let hidden_len = comptime![(layers - 1) * (ch * ch + ch)];
    let mut r0 = 0usize;
    let mut r1 = tape.len() / width;
    if comptime![seeds > 1] {
        r0 = (id / params) * rps;
        r1 = r0 + rps;
    }
    let tb = (p / head) * hw;
    let q = p % head;
    let mut acc = 0.0f32;
    if q < input * ch {
        let i = q / ch;
        let j = q % ch;
        if i < obs {
            for r in r0..r1 {
                acc += s[r * obs + i] * tape[r * width + tb + dl + j];
            }
        } else {
            for r in r0..r1 {
                acc += a[r * act + i - obs] * tape[r * width + tb + dl + j];
            }
        }
    } else if q < (input + 1) * ch {
        let j = q - input * ch;
        for r in r0..r1 {
            acc += tape[r * width + tb + dl + j];
        }
    } else {
        let q2 = q - (input + 1) * ch;
        if q2 < hidden_len {
            let l = q2 / lw + 1;
            let q3 = q2 % lw;
            if q3 < ch * ch {
                let i = q3 / ch;
                let j = q3 % ch;
                for r in r0..r1 {
                    let t = r * width + tb;
                    acc += tape[t + (l - 1) * ch + i] * tape[t + dl + l * ch + j];
                }
            } else {
                let j = q3 - ch * ch;
                for r in r0..r1 {
                    acc += tape[r * width + tb + dl + l * ch + j];
                }
            }
        } else {
            let q3 = q2 - hidden_len;
            if q3 < ch {
                for r in r0..r1 {
                    let t = r * width + tb;
                    acc += tape[t + (layers - 1) * ch + q3] * tape[t + 2 * dl];
                }
            } else {
                for r in r0..r1 {
                    acc += tape[r * width + tb + 2 * dl];
                }
            }
        }
    }
    grads[id] = acc;
}

/// The critic step's gradients toward the TD target `y` (`[rows, 1]` on the device) at the
/// rows `(s, a)`, for `critic` packed: the gradients in the packed layout and the partial sums
/// (`sums::step_stats` adds them up). **Three dispatches**, no readback.
pub fn critic_grads(
    critic: &FusedCritic,
    s: Vec<f32>,
    a: Vec<f32>,
    y: Tensor<2>,
    (obs, act): (usize, usize),
    seeds: SeedRows,
    device: &Device,
) -> (Tensor<1>, Tensor<1>) {
    let rows = y.dims()[0];
    let (ch, layers) = (critic.hidden, critic.layers);
    let params = critic.packed.dims()[0];
    let s = if obs > 0 {
        upload(s, device)
    } else {
        upload(vec![0.0], device)
    };
    let a = upload(a, device);
    let tape = Dispatch::fused_critic_tape(
        s.clone().into_dispatch(),
        a.clone().into_dispatch(),
        y.into_dispatch(),
        critic.packed.clone().into_dispatch(),
        rows,
        obs,
        act,
        ch,
        layers,
        seeds,
    );
    let grads = Dispatch::fused_critic_grads(
        s.into_dispatch(),
        a.into_dispatch(),
        tape.clone(),
        params,
        obs,
        act,
        ch,
        layers,
        seeds,
    );
    let sums = Dispatch::fused_grad_sums(grads.clone(), tape, tape_width(ch, layers), seeds);
    (Tensor::from_dispatch(grads), Tensor::from_dispatch(sums))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{ComputeDevice, read_f32};
    use crate::nets::critic::CriticConfig;
    use burn::optim::GradientsParams;
    use burn::tensor::TensorData;

    #[test]
    fn critic_gradients_loss_and_norm_match_burn_autodiff() {
        let gpu = pollster::block_on(ComputeDevice::webgpu())
            .expect("a wgpu adapter (e.g. mesa-vulkan-drivers)");
        let cpu = ComputeDevice::cpu().autodiff();
        // The playground's critic (2×64, act 1), no state, three layers, one layer; rows that
        // are not a multiple of any workgroup or of PARTS.
        for (obs, act, hidden, layers, rows) in
            [(3, 1, 64, 2, 128), (0, 2, 16, 3, 300), (5, 2, 32, 1, 77)]
        {
            let mut cfg = CriticConfig::new(obs, act, hidden);
            cfg.layers = layers;
            let r = &mut crate::rng::seeded(11);
            let host = cfg.init_host(r);
            let (s, a, y) = (
                crate::rng::normals(r, rows * obs),
                crate::rng::normals(r, rows * act),
                crate::rng::normals(r, rows),
            );
            let what = format!("obs {obs} act {act} hidden {hidden} layers {layers} rows {rows}");
            // burn's autodiff on the CPU: the loss the seam minimises, its flat gradients.
            let critic = crate::nets::host::load::critic_module(&host, &cfg, &cpu);
            let t =
                |v: Vec<f32>, c: usize| Tensor::<2>::from_data(TensorData::new(v, [rows, c]), &cpu);
            let (q1, q2) = critic.forward(t(s.clone(), obs), t(a.clone(), act));
            let yt = t(y.clone(), 1);
            let loss = crate::nets::mse(q1, yt.clone()) + crate::nets::mse(q2, yt);
            let value = loss.clone().inner();
            let grads = GradientsParams::from_grads(loss.backward(), &critic);
            let (want_loss, want_norm, flat) = pollster::block_on(
                crate::trainer::loss_norm_and_flat_grads(&grads, &critic, value),
            )
            .unwrap();
            let want = pollster::block_on(read_f32(flat.unwrap())).unwrap();
            // The three kernels on the wgpu adapter.
            let d = gpu.device();
            let module = crate::nets::host::load::critic_module(&host, &cfg, d);
            let packed = FusedCritic::new(&module);
            let yd = Tensor::<2>::from_data(TensorData::new(y, [rows, 1]), d);
            let (g, sums) = critic_grads(&packed, s, a, yd, (obs, act), SeedRows::ONE, d);
            let got = pollster::block_on(read_f32(g)).unwrap();
            let (loss, norm) = super::super::sums::loss_and_norm(
                &pollster::block_on(read_f32(sums.clone())).unwrap(),
                rows,
            );
            super::super::sums::assert_step_matches(
                &what,
                (&got, loss, norm),
                (&want, want_loss, want_norm),
            );
            // The stats Adam reads on the device: the same loss and norm, and the host's clip
            // factor (a clip at half the norm, at twice it, and off).
            for max in [norm / 2.0, norm * 2.0, f32::INFINITY] {
                let stats = super::super::sums::step_stats(sums.clone(), rows, max);
                let got = pollster::block_on(read_f32(stats)).unwrap();
                let scale = crate::nets::host::optim::clip_scale(norm, max);
                let close = |x: f32, y: f32| (x - y).abs() <= 1e-5 * y.abs().max(1e-6);
                assert_eq!(got.len(), super::super::STATS, "{what}");
                assert!(
                    close(got[0], loss) && close(got[1], norm),
                    "{what}: {got:?} vs {loss} {norm}"
                );
                assert!(
                    close(got[2], scale),
                    "{what}, max {max}: factor {} vs {scale}",
                    got[2]
                );
            }
        }
    }
}
