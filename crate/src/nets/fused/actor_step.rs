//! The policy's training step on WebGPU in **three dispatches**, in place of burn's autodiff
//! forward and backward (~44 dispatches: the input's concatenation, a matrix product, a bias
//! and a GELU per layer, the squared error and all their backward steps, the gradient
//! concatenation). The same scheme as [`super::critic_step`]:
//!
//! 1. [`actor_tape_kernel`], one thread per row: the network (`nets::policy`'s module docs)
//!    at `x = (s, x_t)` and the conditioning `c = (emb(t), emb(λ))`, the residual against the
//!    regression target, and the backward pass to every layer's pre-activation. It writes the
//!    row's tape: the first layer's and every block's output `h_b`, every pre-activation
//!    gradient `δ_b`, the output gradient `2(out − target)/(n·act)` and the row's squared
//!    errors.
//! 2. [`actor_grads_kernel`], one thread per parameter in the module's visit order (`input`'s
//!    weight and bias, `input_cond`'s weight, each block's weight and bias, `output`'s weight
//!    and bias: `FusedAdam`'s layout): `Σ_rows input_i · δ_j`, or `Σ_rows δ_j` for a bias.
//! 3. [`super::sums`]: the partial sums of the squared gradients and errors, read back once.
//!
//! The loss is burn's `mse(pred, target)` (the mean over rows and action components) and the
//! gradients its autodiff's with the tanh-GELU's derivative of [`super::act_grad`].

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::{Device, Tensor};
use burn_cubecl::CubeBackend;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::sums::{SumKernels, empty};
use super::{
    SeedRows, act as activate, act_grad, at, buffer, grid, past_block, row_grid, row_seed,
    seed_row, upload,
};
use crate::nets::PolicyConfig;

/// Floats of a row's tape: `h_0 … h_B` and `δ_0 … δ_B` (`hidden` each, `B = blocks`), the
/// output gradient (`act`), the row's squared error.
fn tape_width(hidden: usize, blocks: usize, act: usize) -> usize {
    2 * (blocks + 1) * hidden + act + 1
}

#[backend_extension(Cube)]
pub trait ActorStepKernels: Backend {
    /// The rows' tapes `[rows, tape_width]` ([`actor_tape_kernel`]) from `x [rows·input]`
    /// (`(s, x_t)` row by row), the conditioning `c [rows·cond]`, the target `[rows·act]`
    /// and the packed policy.
    #[allow(clippy::too_many_arguments)]
    fn fused_actor_tape(
        x: FloatTensor<Self>,
        c: FloatTensor<Self>,
        target: FloatTensor<Self>,
        actor: FloatTensor<Self>,
        rows: usize,
        input: usize,
        cond: usize,
        act: usize,
        hidden: usize,
        blocks: usize,
        seeds: SeedRows,
    ) -> FloatTensor<Self>;

    /// Every parameter's gradient `[params]` in visit order ([`actor_grads_kernel`]).
    #[allow(clippy::too_many_arguments)]
    fn fused_actor_grads(
        x: FloatTensor<Self>,
        c: FloatTensor<Self>,
        tape: FloatTensor<Self>,
        params: usize,
        input: usize,
        cond: usize,
        act: usize,
        hidden: usize,
        blocks: usize,
        seeds: SeedRows,
    ) -> FloatTensor<Self>;
}

impl ActorStepKernels for CubeBackend {
    fn fused_actor_tape(
        x: CubeTensor,
        c: CubeTensor,
        target: CubeTensor,
        actor: CubeTensor,
        rows: usize,
        input: usize,
        cond: usize,
        act: usize,
        hidden: usize,
        blocks: usize,
        seeds: SeedRows,
    ) -> CubeTensor {
        let width = tape_width(hidden, blocks, act);
        let tape = empty(&x, burn::tensor::Shape::new([rows, width]));
        let (count, dim) = row_grid(rows, seeds, 64);
        actor_tape_kernel::launch(
            &tape.client,
            count,
            dim,
            buffer(x),
            buffer(c),
            buffer(target),
            buffer(actor),
            tape.clone().into_buffer_arg(),
            1.0 / (rows / seeds.n * act) as f32,
            input,
            cond,
            act,
            hidden,
            blocks,
            seeds.n,
            seeds.rows,
        );
        tape
    }

    fn fused_actor_grads(
        x: CubeTensor,
        c: CubeTensor,
        tape: CubeTensor,
        params: usize,
        input: usize,
        cond: usize,
        act: usize,
        hidden: usize,
        blocks: usize,
        seeds: SeedRows,
    ) -> CubeTensor {
        let grads = empty(&tape, burn::tensor::Shape::new([params]));
        let (count, dim) = grid(params, 64);
        actor_grads_kernel::launch(
            &grads.client,
            count,
            dim,
            buffer(x),
            buffer(c),
            buffer(tape),
            grads.clone().into_buffer_arg(),
            input,
            cond,
            act,
            hidden,
            blocks,
            seeds.n,
            seeds.rows,
        );
        grads
    }
}

/// One thread per row (see the module docs). Packed policy: `W_in [input, H]`, `b_in [H]`,
/// `W_c [cond, H]`, per block `W_b [H, H]`, `b_b [H]`, `W_o [H, act]`, `b_o [act]`. Tape:
/// `h_b` at `b·H`, `δ_b` at `(B + 1 + b)·H`, the output gradient at `2(B + 1)·H`, the squared
/// error last.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn actor_tape_kernel(
    x: &[f32],
    c: &[f32],
    target: &[f32],
    actor: &[f32],
    tape: &mut [f32],
    inv_n: f32,
    #[comptime] input: usize,
    #[comptime] cond: usize,
    #[comptime] act: usize,
    #[comptime] ch: usize,
    #[comptime] blocks: usize,
    #[comptime] seeds: usize,
    #[comptime] rps: usize,
) {
    let row = seed_row(seeds, rps);
    let seed = row_seed(seeds);
    let outside = past_block(seeds, rps);
    let width = comptime![2 * (blocks + 1) * ch + act + 1];
    if row * width >= tape.len() {
        terminate!();
    }
    if outside {
        terminate!();
    }
    // This row's seed's policy (`SeedRows`).
    let wa = seed * (actor.len() / seeds);
    let cond_at = comptime![(input + 1) * ch];
    let blocks_at = comptime![(input + 1 + cond) * ch];
    let out_at = comptime![(input + 1 + cond) * ch + blocks * (ch * ch + ch)];
    let dl = comptime![(blocks + 1) * ch];
    let tb = row * width;
    // Pre-activations of the first layer and every block; the running residual stream.
    let mut z = Array::<f32>::new(comptime![(blocks + 1) * ch]);
    let mut h = Array::<f32>::new(ch);
    let mut g = Array::<f32>::new(ch);
    for k in 0..ch {
        let mut acc = actor[at(wa, input * ch + k, seeds)];
        for i in 0..input {
            acc += x[row * input + i] * actor[at(wa, i * ch + k, seeds)];
        }
        for i in 0..cond {
            acc += c[row * cond + i] * actor[at(wa, cond_at + i * ch + k, seeds)];
        }
        z[k] = acc;
        let v = activate(acc, true);
        h[k] = v;
        tape[tb + k] = v;
    }
    for b in 0..blocks {
        let off = blocks_at + b * (ch * ch + ch);
        for k in 0..ch {
            let mut acc = actor[at(wa, off + ch * ch + k, seeds)];
            for m in 0..ch {
                acc += h[m] * actor[at(wa, off + m * ch + k, seeds)];
            }
            z[(b + 1) * ch + k] = acc;
        }
        for k in 0..ch {
            let v = h[k] + activate(z[(b + 1) * ch + k], true);
            h[k] = v;
            tape[tb + (b + 1) * ch + k] = v;
        }
    }
    // Output, residual, and the gradient at the last block's output.
    let mut sq = 0.0f32;
    for m in 0..ch {
        g[m] = 0.0f32;
    }
    for j in 0..act {
        let mut o = actor[at(wa, out_at + ch * act + j, seeds)];
        for m in 0..ch {
            o += h[m] * actor[at(wa, out_at + m * act + j, seeds)];
        }
        let e = o - target[row * act + j];
        sq += e * e;
        let d = 2.0f32 * e * inv_n;
        tape[tb + 2 * dl + j] = d;
        for m in 0..ch {
            g[m] += actor[at(wa, out_at + m * act + j, seeds)] * d;
        }
    }
    // Down the blocks: δ_{b+1} = g·gelu'(z_{b+1}); g += W_b δ_{b+1} (the residual keeps g).
    for r in 0..blocks {
        let b = blocks - (r + 1);
        let off = blocks_at + b * (ch * ch + ch);
        for k in 0..ch {
            let d = act_grad(z[(b + 1) * ch + k], g[k], true);
            h[k] = d;
            tape[tb + dl + (b + 1) * ch + k] = d;
        }
        for m in 0..ch {
            let mut v = g[m];
            for k in 0..ch {
                v += actor[at(wa, off + m * ch + k, seeds)] * h[k];
            }
            g[m] = v;
        }
    }
    for k in 0..ch {
        tape[tb + dl + k] = act_grad(z[k], g[k], true);
    }
    tape[tb + width - 1] = sq;
}

/// One thread per parameter `p` of the packed policy (the layout of [`actor_tape_kernel`]),
/// summing over the rows: `x_i · δ_0,j` (`W_in`), `δ_0,j` (`b_in`), `c_i · δ_0,j` (`W_c`),
/// `h_b,i · δ_{b+1},j` and `δ_{b+1},j` (block `b`), `h_B,i · out_j` and `out_j` (the output).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn actor_grads_kernel(
    x: &[f32],
    c: &[f32],
    tape: &[f32],
    grads: &mut [f32],
    #[comptime] input: usize,
    #[comptime] cond: usize,
    #[comptime] act: usize,
    #[comptime] ch: usize,
    #[comptime] blocks: usize,
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
    let width = comptime![2 * (blocks + 1) * ch + act + 1];
    let cond_at = comptime![(input + 1) * ch];
    let blocks_at = comptime![(input + 1 + cond) * ch];
    let out_at = comptime![(input + 1 + cond) * ch + blocks * (ch * ch + ch)];
    let lw = comptime![ch * ch + ch];
    let dl = comptime![(blocks + 1) * ch];
    let mut r0 = 0usize;
    let mut r1 = tape.len() / width;
    if comptime![seeds > 1] {
        r0 = (id / params) * rps;
        r1 = r0 + rps;
    }
    let mut acc = 0.0f32;
    if p < input * ch {
        let i = p / ch;
        let j = p % ch;
        for r in r0..r1 {
            acc += x[r * input + i] * tape[r * width + dl + j];
        }
    } else if p < cond_at {
        let j = p - input * ch;
        for r in r0..r1 {
            acc += tape[r * width + dl + j];
        }
    } else if p < blocks_at {
        let q = p - cond_at;
        let i = q / ch;
        let j = q % ch;
        for r in r0..r1 {
            acc += c[r * cond + i] * tape[r * width + dl + j];
        }
    } else if p < out_at {
        let q = p - blocks_at;
        let b = q / lw;
        let q2 = q % lw;
        if q2 < ch * ch {
            let i = q2 / ch;
            let j = q2 % ch;
            for r in r0..r1 {
                let t = r * width;
                acc += tape[t + b * ch + i] * tape[t + dl + (b + 1) * ch + j];
            }
        } else {
            let j = q2 - ch * ch;
            for r in r0..r1 {
                acc += tape[r * width + dl + (b + 1) * ch + j];
            }
        }
    } else {
        let q = p - out_at;
        if q < ch * act {
            let i = q / act;
            let j = q % act;
            for r in r0..r1 {
                let t = r * width;
                acc += tape[t + blocks * ch + i] * tape[t + 2 * dl + j];
            }
        } else {
            let j = q - ch * act;
            for r in r0..r1 {
                acc += tape[r * width + 2 * dl + j];
            }
        }
    }
    grads[id] = acc;
}

/// The actor step's gradients for `policy` packed in visit order (`packed`), at the rows
/// `x = (s, x_t)` (`[rows·(state + act)]`) with conditioning rows `c` (`[rows·cond_dim]`,
/// [`PolicyConfig::conditioning_rows`]) toward `target` (its first `rows·act` floats: an
/// upload, or [`super::posterior`]'s result where it is): the gradients in visit order and the
/// partial sums (`sums::step_stats`, with `rows·act` as the count).
/// **Three dispatches**, no readback.
pub fn actor_grads(
    policy: &PolicyConfig,
    packed: Tensor<1>,
    x: Tensor<1>,
    c: Vec<f32>,
    target: Tensor<1>,
    seeds: SeedRows,
    device: &Device,
) -> (Tensor<1>, Tensor<1>) {
    let (input, act) = (policy.state_dim + policy.act_dim, policy.act_dim);
    let (cond, hidden, blocks) = (policy.cond_dim(), policy.hidden, policy.blocks);
    let rows = x.dims()[0] / input;
    let params = packed.dims()[0];
    let c = upload(c, device);
    let tape = Dispatch::fused_actor_tape(
        x.clone().into_dispatch(),
        c.clone().into_dispatch(),
        target.into_dispatch(),
        packed.into_dispatch(),
        rows,
        input,
        cond,
        act,
        hidden,
        blocks,
        seeds,
    );
    let grads = Dispatch::fused_actor_grads(
        x.into_dispatch(),
        c.into_dispatch(),
        tape.clone(),
        params,
        input,
        cond,
        act,
        hidden,
        blocks,
        seeds,
    );
    let sums =
        Dispatch::fused_grad_sums(grads.clone(), tape, tape_width(hidden, blocks, act), seeds);
    (Tensor::from_dispatch(grads), Tensor::from_dispatch(sums))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{ComputeDevice, read_f32};
    use burn::optim::GradientsParams;
    use burn::tensor::TensorData;

    fn read(t: Tensor<1>) -> Vec<f32> {
        pollster::block_on(read_f32(t)).unwrap()
    }

    #[test]
    fn actor_gradients_loss_and_norm_match_burn_autodiff() {
        let gpu = pollster::block_on(ComputeDevice::webgpu())
            .expect("a wgpu adapter (e.g. mesa-vulkan-drivers)");
        let cpu = ComputeDevice::cpu().autodiff();
        // The playground's policy (Pendulum: state 3, act 1, 64 wide, 2 blocks), a stateless
        // sampler's (act 2, no blocks), and one with three blocks; odd row counts.
        for (state, act, hidden, blocks, emb, rows) in [
            (3, 1, 64, 2, 32, 128),
            (0, 2, 16, 0, 8, 300),
            (5, 2, 32, 3, 16, 77),
        ] {
            let cfg = PolicyConfig {
                state_dim: state,
                act_dim: act,
                hidden,
                blocks,
                emb_width: emb,
                ..Default::default()
            };
            cfg.validate().unwrap();
            let r = &mut crate::rng::seeded(21);
            let host = cfg.init_host(r);
            let n = rows;
            let (s, y, tgt) = (
                crate::rng::normals(r, n * state),
                crate::rng::normals(r, n * act),
                crate::rng::normals(r, n * act),
            );
            let t: Vec<f32> = (0..n).map(|_| crate::rng::uniform(r, 0.01, 0.99)).collect();
            let what = format!("state {state} act {act} hidden {hidden} blocks {blocks}");
            // burn's autodiff on the CPU: the seam's actor loss and its flat gradients.
            let policy = crate::nets::host::load::policy_module(&host, &cpu);
            let m =
                |v: Vec<f32>, w: usize| Tensor::<2>::from_data(TensorData::new(v, [n, w]), &cpu);
            let st = (state > 0).then(|| m(s.clone(), state));
            let pred = policy.forward(m(y.clone(), act), st, policy.conditioning(&t, 1.5, &cpu));
            let loss = crate::nets::mse(pred, m(tgt.clone(), act));
            let value = loss.clone().inner();
            let grads = GradientsParams::from_grads(loss.backward(), &policy);
            let (want_loss, want_norm, flat) = pollster::block_on(
                crate::trainer::loss_norm_and_flat_grads(&grads, &policy, value),
            )
            .unwrap();
            let want = read(flat.unwrap());
            // The three kernels on the wgpu adapter, from the same policy packed in visit order.
            let d = gpu.device();
            let module = crate::nets::host::load::policy_module(&host, d);
            let packed = super::super::FusedAdam::default().params_of(&module);
            let mut x = Vec::with_capacity(n * (state + act));
            for i in 0..n {
                x.extend_from_slice(&s[i * state..(i + 1) * state]);
                x.extend_from_slice(&y[i * act..(i + 1) * act]);
            }
            let c = cfg.conditioning_rows(&t, 1.5);
            let (g, sums) = actor_grads(
                &cfg,
                packed,
                upload(x, d),
                c,
                upload(tgt, d),
                SeedRows::ONE,
                d,
            );
            let got = read(g);
            let (loss, norm) = super::super::sums::loss_and_norm(&read(sums), n * act);
            super::super::sums::assert_step_matches(
                &what,
                (&got, loss, norm),
                (&want, want_loss, want_norm),
            );
        }
    }
}
