//! The WebGPU module's own kernels (CubeCL, burn's kernel language, launched through a burn
//! backend extension), where burn's layer-by-layer ops cost many dispatches:
//!
//! - **The fused sampler** ([`sample`]): the whole ODE of every candidate row, and its
//!   twin-critic score, in **one compute dispatch**, in place of the ~40 dispatches per ODE step
//!   that [`Policy::sample`] records. One GPU thread owns one row: it integrates
//!   `dy/dt = a_i·y + b_i·net(t_i, y, s)` over the ODE's grid (Euler or Heun; flow `a = 0,
//!   b = 1`; diffusion's probability-flow coefficients), keeping the hidden activations in
//!   registers, then scores `min(Q1, Q2)(s, tanh(y))`. The weights are packed into one buffer
//!   per network ([`FusedPolicy`], [`FusedCritic`]: [`concat`], cached by the seam until the
//!   next commit); the time/λ conditioning's first-layer contribution at each grid point is one
//!   small matmul. Output rows are `[y (act), q]` (or `[y]` unscored), read back once.
//! - **Adam** ([`FusedAdam`]): one dispatch per network over packed buffers (and [`split`], one
//!   per six parameters, to put them back) instead of ~10 per parameter tensor.
//! - **The critic's and the policy's training steps** ([`critic_grads`], [`actor_grads`]):
//!   three dispatches each instead of burn's autodiff (~45): a row's forward and backward pass
//!   into a tape (one thread per row), every parameter's gradient summed over the rows (one
//!   thread per parameter, in the packed layout `FusedAdam` steps), the partial sums of the
//!   squared gradients and errors; then one more ([`step_stats`]) adds them up into the step's
//!   loss, norm and clip factor on the device, which `FusedAdam` reads, so no readback comes
//!   between the gradients and Adam.
//! - **The posterior target** ([`posterior`]): the Boltzmann weights of every point's `K`
//!   candidates from the staged critic's `Q` and `∇ₐQ` (still on the device), the ESS, the
//!   estimator's means and the regression target in one dispatch; the actor step reads the
//!   target where it is.
//! - **The pick and the candidates** ([`pick`], [`candidates`]): each state's softmax(`Q/λ`)
//!   pick among its scored samples, `x_t`, the actor's input rows and `a'`, then the
//!   posterior's candidates with their mixture weights, from draws the host made ahead; so an
//!   RFM update reads back once, at its end (both steps' stats and the posterior's checks).
//! - **The training steps' element-wise ops with their backward** ([`DifferentiableKernels`],
//!   through burn's autodiff): tanh-GELU and ReLU ([`activation`]; ~8 + ~15 and 2 + 2
//!   dispatches in burn's ops, 1 + 1 here), a layer's bias with its activation
//!   ([`linear_act`]) and the mean squared error ([`mse`]; ~12 → 4), where burn's autodiff
//!   still runs on WebGPU (SAC's steps).
//! - **Copies and averages**: [`concat`] packs up to six tensors per dispatch (`Tensor::cat`
//!   records one per tensor: the sampler's weight packing, the clip's gradient concatenation,
//!   the joined readbacks); [`polyak`] is the target critic's average in one dispatch per
//!   parameter (three in burn's ops).
//!
//! `crate::nets::{gelu, relu, relu_backward, linear_act, mse, concat}` pick these on a WebGPU
//! device ([`runs_here`]) and burn's ops elsewhere. Same arithmetic as the host and burn paths
//! (tanh-GELU, `tanh` clamped at ±15 as [`crate::nets::squash`] does, because WGSL's `tanh`
//! overflows; burn's Adam); the parity tests compare them (`seam::tests` and this module's
//! tests on a native wgpu adapter, `tests/web.rs` in Chromium).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, backend_extension};
use burn::tensor::{Device, Tensor, TensorData};
use burn_cubecl::CubeBackend;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use crate::nets::critic::Critic;
use crate::nets::{OdeConfig, Parameterisation, Policy, Solver};

mod actor_step;
mod critic_step;
mod pick;
mod posterior;
mod sums;
pub use actor_step::actor_grads;
pub use critic_step::critic_grads;
pub use pick::{FusedCandidates, Picked, candidates, pick};
pub use posterior::{PosteriorOut, PosteriorSettings, posterior, posterior_out};
pub use sums::{STATS, seeds_step_stats, stats_loss_and_norm, step_stats};

/// How the rows of one launch map to the seeds whose networks it runs (several seeds of an
/// experiment in the same kernels, `trainer::seam::batch`): every network buffer holds `n`
/// networks of one layout stacked, and row `r` is seed `(r / rows) % n`'s. So `rows` rows of
/// seed 0, then of seed 1, …, and the pattern may repeat (the sampler's states, then its next
/// states). [`SeedRows::ONE`]: one seed, every row its.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRows {
    /// Seeds (≥ 1).
    pub n: usize,
    /// Consecutive rows of one seed (≥ 1).
    pub rows: usize,
}

impl SeedRows {
    pub const ONE: Self = Self { n: 1, rows: 1 };

    /// `n` seeds of `rows` consecutive rows each (`n = 1`: [`SeedRows::ONE`]).
    pub fn new(n: usize, rows: usize) -> Self {
        assert!(n >= 1 && rows >= 1, "seeds {n}, rows {rows}");
        if n == 1 { Self::ONE } else { Self { n, rows } }
    }
}

#[backend_extension(Cube)]
pub trait FusedKernels: Backend {
    /// `[rows, width]` from `y0 [rows·act]`, `s [rows·obs]` (one float when `obs == 0`),
    /// the packed actor ([`FusedPolicy`]'s layout; `skip`: the floats between its input bias and
    /// its blocks), the conditioning `[(steps+1)·hidden]`, the coefficients
    /// `[2·(steps+1) + 1]` (`a_i, b_i`, then the step size) and the packed twin critic (one
    /// float when unscored).
    #[allow(clippy::too_many_arguments)]
    fn fused_ode(
        y0: FloatTensor<Self>,
        s: FloatTensor<Self>,
        actor: FloatTensor<Self>,
        cond: FloatTensor<Self>,
        coef: FloatTensor<Self>,
        critic: FloatTensor<Self>,
        rows: usize,
        obs: usize,
        act: usize,
        hidden: usize,
        blocks: usize,
        skip: usize,
        steps: usize,
        heun: bool,
        critic_hidden: usize,
        critic_layers: usize,
        seeds: SeedRows,
    ) -> FloatTensor<Self>;

    /// Per row, `min(Q1, Q2)(s, a)` of the packed twin critic ([`FusedCritic`]) from
    /// `s [rows·obs]` (one float when `obs == 0`) and `a [rows·act]`, and with `grad` its
    /// gradient in `a` (the smaller head's, head 1 on ties): `[rows, 1 + act]`; or with `td` the
    /// TD target `rew + not_done·min(Q1, Q2)` (`rew`, `not_done`: `[rows]`, else one float
    /// each): `[rows, 1]`.
    #[allow(clippy::too_many_arguments)]
    fn fused_q_grad(
        s: FloatTensor<Self>,
        a: FloatTensor<Self>,
        critic: FloatTensor<Self>,
        rew: FloatTensor<Self>,
        not_done: FloatTensor<Self>,
        rows: usize,
        obs: usize,
        act: usize,
        hidden: usize,
        layers: usize,
        grad: bool,
        td: bool,
        seeds: SeedRows,
    ) -> FloatTensor<Self>;

    /// One Adam step of flattened parameters `p` (`[n]`) with gradients `g` (`[n]`) and the
    /// moments `mv` (`[2n]`: `m_i, v_i` interleaved) at learning rate `lr`, bias correction
    /// `factor` and `eps`, the gradients scaled by the clip's factor `stats[STATS_CLIP]` (a
    /// step's stats, [`step_stats`]: computed on the device, so no readback comes between the
    /// gradients and Adam). Returns `(p', mv')`. The three numbers travel in the launch's scalar
    /// block; the moments share a buffer: six storage buffers and the launch's info, within
    /// WebGPU's default limit of eight per shader stage.
    #[allow(clippy::too_many_arguments)]
    fn fused_adam(
        p: FloatTensor<Self>,
        g: FloatTensor<Self>,
        mv: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        lr: f32,
        factor: f32,
        eps: f32,
        seeds: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The Polyak average `t·(1 − τ) + o·τ` of a target parameter `t` towards `o` (both `[n]`);
    /// `tau` travels in the launch's scalar block, as Adam's numbers do.
    fn fused_polyak(t: FloatTensor<Self>, o: FloatTensor<Self>, tau: f32) -> FloatTensor<Self>;

    /// Six flat tensors of lengths `n0 … n5` cut from `packed` one after another from element
    /// `offset` on (a zero length gives an unused one-element tensor): [`split`].
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn fused_unpack(
        packed: FloatTensor<Self>,
        offset: usize,
        n0: usize,
        n1: usize,
        n2: usize,
        n3: usize,
        n4: usize,
        n5: usize,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    );

    /// `out` with the first `parts` of `a … f` (flattened) copied one after another from
    /// element `offset` on, in place: [`concat`] packs up to six tensors per dispatch.
    #[allow(clippy::too_many_arguments)]
    fn fused_pack(
        out: FloatTensor<Self>,
        parts: usize,
        offset: usize,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        d: FloatTensor<Self>,
        e: FloatTensor<Self>,
        f: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

impl FusedKernels for CubeBackend {
    fn fused_ode(
        y0: CubeTensor,
        s: CubeTensor,
        actor: CubeTensor,
        cond: CubeTensor,
        coef: CubeTensor,
        critic: CubeTensor,
        rows: usize,
        obs: usize,
        act: usize,
        hidden: usize,
        blocks: usize,
        skip: usize,
        steps: usize,
        heun: bool,
        critic_hidden: usize,
        critic_layers: usize,
        seeds: SeedRows,
    ) -> CubeTensor {
        let width = act + usize::from(critic_layers > 0);
        let out = empty_device_dtype(
            y0.client.clone(),
            y0.device.clone(),
            burn::tensor::Shape::new([rows, width]),
            y0.dtype,
        );
        let (count, dim) = row_grid(rows, seeds, 64);
        ode_kernel::launch(
            &out.client,
            count,
            dim,
            buffer(y0),
            buffer(s),
            buffer(actor),
            buffer(cond),
            buffer(coef),
            buffer(critic),
            out.clone().into_buffer_arg(),
            obs,
            act,
            hidden,
            blocks,
            skip,
            steps,
            heun,
            critic_hidden,
            critic_layers,
            seeds.n,
            seeds.rows,
        );
        out
    }

    fn fused_q_grad(
        s: CubeTensor,
        a: CubeTensor,
        critic: CubeTensor,
        rew: CubeTensor,
        not_done: CubeTensor,
        rows: usize,
        obs: usize,
        act: usize,
        hidden: usize,
        layers: usize,
        grad: bool,
        td: bool,
        seeds: SeedRows,
    ) -> CubeTensor {
        let width = if grad { 1 + act } else { 1 };
        let out = empty_device_dtype(
            a.client.clone(),
            a.device.clone(),
            burn::tensor::Shape::new([rows, width]),
            a.dtype,
        );
        let (count, dim) = row_grid(rows, seeds, 64);
        q_grad_kernel::launch(
            &out.client,
            count,
            dim,
            buffer(s),
            buffer(a),
            buffer(critic),
            buffer(rew),
            buffer(not_done),
            out.clone().into_buffer_arg(),
            obs,
            act,
            hidden,
            layers,
            grad,
            td,
            seeds.n,
            seeds.rows,
        );
        out
    }

    fn fused_adam(
        p: CubeTensor,
        g: CubeTensor,
        mv: CubeTensor,
        stats: CubeTensor,
        lr: f32,
        factor: f32,
        eps: f32,
        seeds: usize,
    ) -> (CubeTensor, CubeTensor) {
        let n = p.meta.num_elements();
        let empty = |len: usize| {
            empty_device_dtype(
                p.client.clone(),
                p.device.clone(),
                burn::tensor::Shape::new([len]),
                p.dtype,
            )
        };
        let (p2, mv2) = (empty(n), empty(2 * n));
        let (count, dim) = grid(n, 256);
        adam_kernel::launch(
            &p2.client,
            count,
            dim,
            buffer(p),
            buffer(g),
            buffer(mv),
            buffer(stats),
            p2.clone().into_buffer_arg(),
            mv2.clone().into_buffer_arg(),
            lr,
            factor,
            eps,
            sums::STATS_CLIP,
            seeds,
        );
        (p2, mv2)
    }

    fn fused_polyak(t: CubeTensor, o: CubeTensor, tau: f32) -> CubeTensor {
        let out = empty_like(&t);
        let (count, dim) = grid(out.meta.num_elements(), 256);
        polyak_kernel::launch(
            &out.client,
            count,
            dim,
            buffer(t),
            buffer(o),
            out.clone().into_buffer_arg(),
            tau,
        );
        out
    }

    fn fused_unpack(
        packed: CubeTensor,
        offset: usize,
        n0: usize,
        n1: usize,
        n2: usize,
        n3: usize,
        n4: usize,
        n5: usize,
    ) -> (
        CubeTensor,
        CubeTensor,
        CubeTensor,
        CubeTensor,
        CubeTensor,
        CubeTensor,
    ) {
        let n = [n0, n1, n2, n3, n4, n5];
        let part = |len: usize| {
            empty_device_dtype(
                packed.client.clone(),
                packed.device.clone(),
                burn::tensor::Shape::new([len.max(1)]),
                packed.dtype,
            )
        };
        let outs = n.map(part);
        let (count, dim) = grid(n.iter().sum(), 256);
        unpack_kernel::launch(
            &packed.client,
            count,
            dim,
            buffer(packed.clone()),
            outs[0].clone().into_buffer_arg(),
            outs[1].clone().into_buffer_arg(),
            outs[2].clone().into_buffer_arg(),
            outs[3].clone().into_buffer_arg(),
            outs[4].clone().into_buffer_arg(),
            outs[5].clone().into_buffer_arg(),
            offset,
            n0,
            n1,
            n2,
            n3,
            n4,
            n5,
        );
        let [a, b, c, d, e, f] = outs;
        (a, b, c, d, e, f)
    }

    fn fused_pack(
        out: CubeTensor,
        parts: usize,
        offset: usize,
        a: CubeTensor,
        b: CubeTensor,
        c: CubeTensor,
        d: CubeTensor,
        e: CubeTensor,
        f: CubeTensor,
    ) -> CubeTensor {
        let len = |t: &CubeTensor, k: usize| if k < parts { t.meta.num_elements() } else { 0 };
        let n = [
            len(&a, 0),
            len(&b, 1),
            len(&c, 2),
            len(&d, 3),
            len(&e, 4),
            len(&f, 5),
        ];
        let (count, dim) = grid(n.iter().sum(), 256);
        pack_kernel::launch(
            &out.client,
            count,
            dim,
            buffer(a),
            buffer(b),
            buffer(c),
            buffer(d),
            buffer(e),
            buffer(f),
            out.clone().into_buffer_arg(),
            offset,
            n[0],
            n[1],
            n[2],
            n[3],
            n[4],
            n[5],
        );
        out
    }
}

/// `out[offset + i]` for the `i`-th element of `a ‖ b ‖ … ‖ f` (lengths `n0 … n5`, zero for an
/// unused slot), one thread per element.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn pack_kernel(
    a: &[f32],
    b: &[f32],
    c: &[f32],
    d: &[f32],
    e: &[f32],
    f: &[f32],
    out: &mut [f32],
    #[comptime] offset: usize,
    #[comptime] n0: usize,
    #[comptime] n1: usize,
    #[comptime] n2: usize,
    #[comptime] n3: usize,
    #[comptime] n4: usize,
    #[comptime] n5: usize,
) {
    let i = ABSOLUTE_POS;
    let e1 = comptime![n0 + n1];
    let e2 = comptime![n0 + n1 + n2];
    let e3 = comptime![n0 + n1 + n2 + n3];
    let e4 = comptime![n0 + n1 + n2 + n3 + n4];
    let e5 = comptime![n0 + n1 + n2 + n3 + n4 + n5];
    if i >= e5 {
        terminate!();
    }
    if i < n0 {
        out[offset + i] = a[i];
    } else if i < e1 {
        out[offset + i] = b[i - n0];
    } else if i < e2 {
        out[offset + i] = c[i - e1];
    } else if i < e3 {
        out[offset + i] = d[i - e2];
    } else if i < e4 {
        out[offset + i] = e[i - e3];
    } else {
        out[offset + i] = f[i - e4];
    }
}

/// The `i`-th element of `a ‖ b ‖ … ‖ f` (lengths `n0 … n5`) from `packed[offset + i]`, one
/// thread per element (the inverse of [`pack_kernel`]).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn unpack_kernel(
    packed: &[f32],
    a: &mut [f32],
    b: &mut [f32],
    c: &mut [f32],
    d: &mut [f32],
    e: &mut [f32],
    f: &mut [f32],
    #[comptime] offset: usize,
    #[comptime] n0: usize,
    #[comptime] n1: usize,
    #[comptime] n2: usize,
    #[comptime] n3: usize,
    #[comptime] n4: usize,
    #[comptime] n5: usize,
) {
    let i = ABSOLUTE_POS;
    let e1 = comptime![n0 + n1];
    let e2 = comptime![n0 + n1 + n2];
    let e3 = comptime![n0 + n1 + n2 + n3];
    let e4 = comptime![n0 + n1 + n2 + n3 + n4];
    let e5 = comptime![n0 + n1 + n2 + n3 + n4 + n5];
    if i >= e5 {
        terminate!();
    }
    let v = packed[offset + i];
    if i < n0 {
        a[i] = v;
    } else if i < e1 {
        b[i - n0] = v;
    } else if i < e2 {
        c[i - e1] = v;
    } else if i < e3 {
        d[i - e2] = v;
    } else if i < e4 {
        e[i - e3] = v;
    } else {
        f[i - e4] = v;
    }
}

/// `out = t·(1 − τ) + o·τ`, the arithmetic of `nets::critic::polyak`.
#[cube(launch)]
fn polyak_kernel(t: &[f32], o: &[f32], out: &mut [f32], tau: f32) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    out[i] = t[i] * (1.0f32 - tau) + o[i] * tau;
}

/// Kernels the training steps differentiate through, **one dispatch each way**: the hidden
/// activations (burn's ops record ~8 forward and ~15 backward for tanh-GELU, 2 and 2 for ReLU)
/// and the mean squared error (~4 and ~8). A tracked input goes to the `Autodiff`
/// implementation below, which records the `*_backward` kernel as the backward step.
#[backend_extension(Cube, Autodiff)]
pub trait DifferentiableKernels: Backend {
    /// `act(x)`, element by element.
    fn fused_act(x: FloatTensor<Self>, gelu: bool) -> FloatTensor<Self>;

    /// `grad · act'(x)`, element by element (`x` is the activation's input).
    fn fused_act_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        gelu: bool,
    ) -> FloatTensor<Self>;

    /// `act(z + b)` for `z: [n, h]` and a bias `b: [h]` added to every row: a linear layer's
    /// bias and its activation in one dispatch (burn's ops record the addition apart).
    fn fused_bias_act(z: FloatTensor<Self>, b: FloatTensor<Self>, gelu: bool) -> FloatTensor<Self>;

    /// `grad · act'(z + b)` (`[n, h]`), the part of [`DifferentiableKernels::fused_bias_act`]'s
    /// backward that is not a reduction (the bias's gradient sums it over the rows).
    fn fused_bias_act_backward(
        z: FloatTensor<Self>,
        b: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        gelu: bool,
    ) -> FloatTensor<Self>;

    /// `[mean((p − y)²)]` of flat `p`, `y` (`[n]`): the squared errors in one dispatch, burn's mean.
    fn fused_mse(p: FloatTensor<Self>, y: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `g · 2(p − y)/n`, the gradient of [`DifferentiableKernels::fused_mse`] in `p` (`g`: `[1]`).
    fn fused_mse_backward(
        p: FloatTensor<Self>,
        y: FloatTensor<Self>,
        g: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

impl DifferentiableKernels for CubeBackend {
    fn fused_bias_act(z: CubeTensor, b: CubeTensor, gelu: bool) -> CubeTensor {
        let out = empty_like(&z);
        let h = b.meta.num_elements();
        let (count, dim) = grid(out.meta.num_elements(), 256);
        bias_act_kernel::launch(
            &out.client,
            count,
            dim,
            buffer(z),
            buffer(b),
            out.clone().into_buffer_arg(),
            h,
            gelu,
        );
        out
    }

    fn fused_bias_act_backward(
        z: CubeTensor,
        b: CubeTensor,
        grad: CubeTensor,
        gelu: bool,
    ) -> CubeTensor {
        let out = empty_like(&z);
        let h = b.meta.num_elements();
        let (count, dim) = grid(out.meta.num_elements(), 256);
        bias_act_backward_kernel::launch(
            &out.client,
            count,
            dim,
            buffer(z),
            buffer(b),
            buffer(grad),
            out.clone().into_buffer_arg(),
            h,
            gelu,
        );
        out
    }

    fn fused_mse(p: CubeTensor, y: CubeTensor) -> CubeTensor {
        let out = empty_like(&p);
        let (count, dim) = grid(out.meta.num_elements(), 256);
        sq_err_kernel::launch(
            &out.client,
            count,
            dim,
            buffer(p),
            buffer(y),
            out.clone().into_buffer_arg(),
        );
        Self::float_mean(out)
    }

    fn fused_mse_backward(p: CubeTensor, y: CubeTensor, g: CubeTensor) -> CubeTensor {
        let n = p.meta.num_elements();
        let out = empty_like(&p);
        let (count, dim) = grid(n, 256);
        mse_backward_kernel::launch(
            &out.client,
            count,
            dim,
            buffer(p),
            buffer(y),
            buffer(g),
            out.clone().into_buffer_arg(),
            n,
        );
        out
    }

    fn fused_act(x: CubeTensor, gelu: bool) -> CubeTensor {
        let out = empty_like(&x);
        let (count, dim) = grid(out.meta.num_elements(), 256);
        act_kernel::launch(
            &out.client,
            count,
            dim,
            buffer(x),
            out.clone().into_buffer_arg(),
            gelu,
        );
        out
    }

    fn fused_act_backward(x: CubeTensor, grad: CubeTensor, gelu: bool) -> CubeTensor {
        let out = empty_like(&x);
        let (count, dim) = grid(out.meta.num_elements(), 256);
        act_backward_kernel::launch(
            &out.client,
            count,
            dim,
            buffer(x),
            buffer(grad),
            out.clone().into_buffer_arg(),
            gelu,
        );
        out
    }
}

impl<B: DifferentiableKernels, C: CheckpointStrategy> DifferentiableKernels for Autodiff<B, C> {
    fn fused_act(x: FloatTensor<Self>, gelu: bool) -> FloatTensor<Self> {
        /// The backward step: `grad · act'(x)` from the saved input.
        #[derive(Debug)]
        struct ActBackward(bool);

        impl<B: DifferentiableKernels> Backward<B, 1> for ActBackward {
            type State = FloatTensor<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let x = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |g| {
                    B::fused_act_backward(x, g, self.0)
                });
            }
        }

        match ActBackward(gelu)
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let input = x.into_primitive();
                prep.finish(input.clone(), B::fused_act(input, gelu))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_act(x.into_primitive(), gelu)),
        }
    }

    fn fused_bias_act(z: FloatTensor<Self>, b: FloatTensor<Self>, gelu: bool) -> FloatTensor<Self> {
        /// The backward step: `dz = grad · act'(z + b)` to `z`, its sum over rows to `b`.
        #[derive(Debug)]
        struct BiasActBackward(bool);

        impl<B: DifferentiableKernels> Backward<B, 2> for BiasActBackward {
            type State = (FloatTensor<B>, FloatTensor<B>);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let (z, b) = ops.state;
                let [node_z, node_b] = ops.parents;
                let g = grads.consume::<B>(&ops.node);
                let shape_b = burn::backend::TensorMetadata::shape(&b);
                let dz = B::fused_bias_act_backward(z, b, g, self.0);
                if let Some(node) = node_b {
                    let db = B::float_reshape(B::float_sum_dim(dz.clone(), 0), shape_b);
                    grads.register::<B>(node.id, db);
                }
                if let Some(node) = node_z {
                    grads.register::<B>(node.id, dz);
                }
            }
        }

        match BiasActBackward(gelu)
            .prepare::<C>([z.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (z, b) = (z.into_primitive(), b.into_primitive());
                let out = B::fused_bias_act(z.clone(), b.clone(), gelu);
                prep.finish((z, b), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_bias_act(
                z.into_primitive(),
                b.into_primitive(),
                gelu,
            )),
        }
    }

    /// Not differentiated itself (only the forward is): computed on the inner backend.
    fn fused_bias_act_backward(
        z: FloatTensor<Self>,
        b: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        gelu: bool,
    ) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::fused_bias_act_backward(
            z.into_primitive(),
            b.into_primitive(),
            grad.into_primitive(),
            gelu,
        ))
    }

    fn fused_mse(p: FloatTensor<Self>, y: FloatTensor<Self>) -> FloatTensor<Self> {
        /// The backward step: `g · 2(p − y)/n` to `p`, its negative to `y`.
        #[derive(Debug)]
        struct MseBackward;

        impl<B: DifferentiableKernels> Backward<B, 2> for MseBackward {
            type State = (FloatTensor<B>, FloatTensor<B>);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let (p, y) = ops.state;
                let [node_p, node_y] = ops.parents;
                let g = grads.consume::<B>(&ops.node);
                let dp = B::fused_mse_backward(p, y, g);
                if let Some(node) = node_y {
                    grads.register::<B>(node.id, B::float_neg(dp.clone()));
                }
                if let Some(node) = node_p {
                    grads.register::<B>(node.id, dp);
                }
            }
        }

        match MseBackward
            .prepare::<C>([p.node(), y.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (p, y) = (p.into_primitive(), y.into_primitive());
                let out = B::fused_mse(p.clone(), y.clone());
                prep.finish((p, y), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::fused_mse(p.into_primitive(), y.into_primitive()))
            }
        }
    }

    /// Not differentiated itself (only the forward is): computed on the inner backend.
    fn fused_mse_backward(
        p: FloatTensor<Self>,
        y: FloatTensor<Self>,
        g: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::fused_mse_backward(
            p.into_primitive(),
            y.into_primitive(),
            g.into_primitive(),
        ))
    }

    /// Not differentiated itself (only the forward is): computed on the inner backend.
    fn fused_act_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        gelu: bool,
    ) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::fused_act_backward(
            x.into_primitive(),
            grad.into_primitive(),
            gelu,
        ))
    }
}

/// `act(x)` of a tensor on a WebGPU device (plain or autodiff): one dispatch, and one in the
/// backward pass ([`DifferentiableKernels`]).
pub fn activation<const D: usize>(x: Tensor<D>, gelu: bool) -> Tensor<D> {
    Tensor::from_dispatch(Dispatch::fused_act(x.into_dispatch(), gelu))
}

/// `act(x·W + b)` of a biased linear layer on a WebGPU device: burn's matrix product, then the
/// bias and the activation in one dispatch (and one, plus the bias's reduction, backward).
pub fn linear_act(layer: &burn::nn::Linear, x: Tensor<2>, gelu: bool) -> Tensor<2> {
    let z = x.matmul(layer.weight.val());
    let b = layer.bias.as_ref().expect("a biased layer").val();
    Tensor::from_dispatch(Dispatch::fused_bias_act(
        z.into_dispatch(),
        b.into_dispatch(),
        gelu,
    ))
}

/// `[mean((p − y)²)]` on a WebGPU device: the squared errors in one dispatch and burn's mean,
/// one dispatch in the backward pass.
pub fn mse<const D: usize>(p: Tensor<D>, y: Tensor<D>) -> Tensor<1> {
    let n = p.shape().num_elements();
    Tensor::from_dispatch(Dispatch::fused_mse(
        p.reshape([n]).into_dispatch(),
        y.reshape([n]).into_dispatch(),
    ))
}

/// `grad · act'(x)` for an explicit backward pass on a WebGPU device (one dispatch).
pub fn activation_backward<const D: usize>(x: Tensor<D>, grad: Tensor<D>, gelu: bool) -> Tensor<D> {
    Tensor::from_dispatch(Dispatch::fused_act_backward(
        x.into_dispatch(),
        grad.into_dispatch(),
        gelu,
    ))
}

/// `t·(1 − τ) + o·τ` for flattened parameters on a WebGPU device (one dispatch).
pub fn polyak(t: Tensor<1>, o: Tensor<1>, tau: f32) -> Tensor<1> {
    Tensor::from_dispatch(Dispatch::fused_polyak(
        t.into_dispatch(),
        o.into_dispatch(),
        tau,
    ))
}

/// `Tensor::cat(parts, 0)` of flat tensors on a WebGPU device in one dispatch per six parts
/// (`cat` records one per part); one part is itself, no dispatch (tensors are values).
pub fn concat(mut parts: Vec<Tensor<1>>) -> Tensor<1> {
    if parts.len() == 1 {
        return parts.pop().expect("one part");
    }
    let total = parts.iter().map(|p| p.dims()[0]).sum::<usize>();
    let mut out = Tensor::<1>::empty([total], &parts[0].device()).into_dispatch();
    let mut offset = 0;
    for chunk in parts.chunks(6) {
        // An unused slot gets a buffer of its own (bindings of one dispatch must not alias).
        let at = |k: usize| match chunk.get(k) {
            Some(p) => p.clone().into_dispatch(),
            None => Tensor::<1>::empty([1], &chunk[0].device()).into_dispatch(),
        };
        out = Dispatch::fused_pack(
            out,
            chunk.len(),
            offset,
            at(0),
            at(1),
            at(2),
            at(3),
            at(4),
            at(5),
        );
        offset += chunk.iter().map(|p| p.dims()[0]).sum::<usize>();
    }
    Tensor::from_dispatch(out)
}

/// Whether `device` runs this module's kernels: a CubeCL (WebGPU) device, plain or autodiff.
pub fn runs_here(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        burn::backend::DispatchDevice::Cube(_)
    )
}

fn empty_like(x: &CubeTensor) -> CubeTensor {
    empty_device_dtype(
        x.client.clone(),
        x.device.clone(),
        x.meta.shape().clone(),
        x.dtype,
    )
}

/// `out = (p − y)²`, one thread per element.
#[cube(launch)]
fn sq_err_kernel(p: &[f32], y: &[f32], out: &mut [f32]) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    let d = p[i] - y[i];
    out[i] = d * d;
}

/// `out = g[0] · 2(p − y)/n`, one thread per element.
#[cube(launch)]
fn mse_backward_kernel(p: &[f32], y: &[f32], g: &[f32], out: &mut [f32], #[comptime] n: usize) {
    let i = ABSOLUTE_POS;
    if i >= n {
        terminate!();
    }
    out[i] = g[0] * 2.0f32 * (p[i] - y[i]) / f32::cast_from(n);
}

/// `out = act(z + b[i mod h])`, one thread per element of `z: [n, h]`.
#[cube(launch)]
fn bias_act_kernel(
    z: &[f32],
    b: &[f32],
    out: &mut [f32],
    #[comptime] h: usize,
    #[comptime] gelu: bool,
) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    out[i] = act(z[i] + b[i % h], gelu);
}

/// `out = grad · act'(z + b[i mod h])`.
#[cube(launch)]
fn bias_act_backward_kernel(
    z: &[f32],
    b: &[f32],
    grad: &[f32],
    out: &mut [f32],
    #[comptime] h: usize,
    #[comptime] gelu: bool,
) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    out[i] = act_grad(z[i] + b[i % h], grad[i], gelu);
}

/// tanh-GELU (as [`gelu_tanh`]) or ReLU of one value.
#[cube]
fn act(v: f32, #[comptime] gelu: bool) -> f32 {
    let mut out = v;
    if gelu {
        out = gelu_tanh(v);
    } else if v < 0.0f32 {
        out = 0.0f32;
    }
    out
}

/// `g · act'(v)`: tanh-GELU's derivative
/// `½(1 + t) + ½·v·(1 − t²)·c·(1 + 3a·v²)` with `t = tanh(c·(v + a·v³))`, or ReLU's step
/// (zero at `v ≤ 0`, as burn's `relu_backward`).
#[cube]
fn act_grad(v: f32, g: f32, #[comptime] gelu: bool) -> f32 {
    let mut out = g;
    if gelu {
        let t = tanh_c(GELU_C * (v + GELU_A * v * v * v));
        let d = 0.5f32 * (1.0f32 + t)
            + 0.5f32 * v * (1.0f32 - t * t) * GELU_C * (1.0f32 + 3.0f32 * GELU_A * v * v);
        out = g * d;
    } else if v <= 0.0f32 {
        out = 0.0f32;
    }
    out
}

/// [`act`], one thread per element.
#[cube(launch)]
fn act_kernel(x: &[f32], out: &mut [f32], #[comptime] gelu: bool) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    out[i] = act(x[i], gelu);
}

/// [`act_grad`], one thread per element (`x` is the activation's input).
#[cube(launch)]
fn act_backward_kernel(x: &[f32], grad: &[f32], out: &mut [f32], #[comptime] gelu: bool) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    out[i] = act_grad(x[i], grad[i], gelu);
}

/// Adam with burn's defaults and arithmetic (the same as `nets::host::optim::HostAdam`) on the
/// gradient `g` times the clip's factor `stats[clip]`: `m ← β1 m + (1−β1) g`,
/// `v ← β2 v + (1−β2) g²`, `p ← p − lr · m·factor / (√v + eps)`; `mv` holds `m_i, v_i`
/// interleaved.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn adam_kernel(
    p: &[f32],
    g: &[f32],
    mv: &[f32],
    stats: &[f32],
    p_out: &mut [f32],
    mv_out: &mut [f32],
    lr: f32,
    factor: f32,
    eps: f32,
    #[comptime] clip: usize,
    #[comptime] seeds: usize,
) {
    let i = ABSOLUTE_POS;
    if i >= p_out.len() {
        terminate!();
    }
    // Each seed's parameters are one block of `p`, its stats one block of `stats`.
    let mut seed = 0usize;
    if comptime![seeds > 1] {
        seed = i / (p_out.len() / seeds);
    }
    let gi = g[i] * stats[seed * comptime![STATS] + clip];
    let mm = mv[2 * i] * 0.9f32 + gi * (1.0f32 - 0.9f32);
    let vv = mv[2 * i + 1] * 0.999f32 + gi * gi * (1.0f32 - 0.999f32);
    p_out[i] = p[i] - (mm * factor / (vv.sqrt() + eps)) * lr;
    mv_out[2 * i] = mm;
    mv_out[2 * i + 1] = vv;
}

/// A kernel argument: `t`'s buffer, made contiguous first when it is not.
fn buffer(t: CubeTensor) -> BufferArg {
    burn_cubecl::kernel::into_contiguous(t).into_buffer_arg()
}

/// One thread per row of a launch over `seeds` ([`SeedRows`]): one seed, [`grid`]; several,
/// cubes `(x, b)`, `b` the block of `seeds.rows` rows (`rows / seeds.rows` of them), `x` enough
/// cubes of `per_cube` threads for one block, so no cube spans two seeds.
pub(crate) fn row_grid(rows: usize, seeds: SeedRows, per_cube: usize) -> (CubeCount, CubeDim) {
    if seeds.n == 1 {
        return grid(rows, per_cube);
    }
    assert_eq!(
        rows % seeds.rows,
        0,
        "{rows} rows in blocks of {}",
        seeds.rows
    );
    (
        CubeCount::Static(
            seeds.rows.div_ceil(per_cube) as u32,
            (rows / seeds.rows) as u32,
            1,
        ),
        CubeDim::new_1d(per_cube as u32),
    )
}

/// One thread per item: `n` items in 1-D cubes of `per_cube` threads.
fn grid(n: usize, per_cube: usize) -> (CubeCount, CubeDim) {
    (
        CubeCount::Static(n.div_ceil(per_cube).max(1) as u32, 1, 1),
        CubeDim::new_1d(per_cube as u32),
    )
}

/// This thread's row in a launch over `seeds` ([`SeedRows`]): one seed, its 1-D position;
/// several ([`row_grid`]), cube `(x, b)` runs the rows `b·rps + x·dim + unit` of block `b`.
#[cube]
pub(crate) fn seed_row(#[comptime] seeds: usize, #[comptime] rps: usize) -> usize {
    let mut row = ABSOLUTE_POS;
    if comptime![seeds > 1] {
        row = usize::cast_from(CUBE_POS_Y) * rps + usize::cast_from(ABSOLUTE_POS_X);
    }
    row
}

/// The seed of this thread's rows ([`seed_row`]): block `b`'s, `b % seeds`, the same for the
/// whole cube, so the offset of that seed's networks is uniform.
#[cube]
pub(crate) fn row_seed(#[comptime] seeds: usize) -> usize {
    let mut seed = 0usize;
    if comptime![seeds > 1] {
        seed = usize::cast_from(CUBE_POS_Y) % seeds;
    }
    seed
}

/// Whether this thread is past its block's `rps` rows ([`row_grid`] rounds a block up to whole
/// cubes); never with one seed.
#[cube]
pub(crate) fn past_block(#[comptime] seeds: usize, #[comptime] rps: usize) -> bool {
    let mut outside = false;
    if comptime![seeds > 1] {
        outside = usize::cast_from(ABSOLUTE_POS_X) >= rps;
    }
    outside
}

/// Index `i` of the seed whose block starts at `base` ([`SeedRows`]): `base + i`, and for one
/// seed `i` itself, so a one-seed kernel's loops carry no offset.
#[cube]
pub(crate) fn at(base: usize, i: usize, #[comptime] seeds: usize) -> usize {
    let mut out = i;
    if comptime![seeds > 1] {
        out = base + i;
    }
    out
}

/// `tanh` with its argument clamped to ±15 (exact in f32; WGSL's `tanh` overflows beyond).
/// (Two branches, as the kernel language writes a clamp of a scalar.)
#[cube]
#[allow(clippy::manual_clamp)]
fn tanh_c(x: f32) -> f32 {
    let mut z = x;
    if z > 15.0f32 {
        z = 15.0f32;
    }
    if z < -15.0f32 {
        z = -15.0f32;
    }
    z.tanh()
}

/// `√(2/π)` and the cubic coefficient of tanh-GELU.
const GELU_C: f32 = 0.797_884_6;
const GELU_A: f32 = 0.044_715;

/// The tanh approximation of GELU (flax's default; `gelu_approximate` in burn, `nets::host`).
#[cube]
fn gelu_tanh(x: f32) -> f32 {
    0.5f32 * x * (1.0f32 + tanh_c(GELU_C * (x + GELU_A * x * x * x)))
}

/// One thread per row (see the module docs). Everything is in this one function: CubeCL 0.11
/// rejects local arrays passed by reference to helper functions ("expected operand type
/// cube.ptr"), so the network pass is written once and reused for Heun's second stage by a
/// stage loop.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn ode_kernel(
    y0: &[f32],
    s: &[f32],
    actor: &[f32],
    cond: &[f32],
    coef: &[f32],
    critic: &[f32],
    out: &mut [f32],
    #[comptime] obs: usize,
    #[comptime] act: usize,
    #[comptime] hidden: usize,
    #[comptime] blocks: usize,
    #[comptime] skip: usize,
    #[comptime] steps: usize,
    #[comptime] heun: bool,
    #[comptime] ch: usize,
    #[comptime] layers: usize,
    #[comptime] seeds: usize,
    #[comptime] rps: usize,
) {
    let row = seed_row(seeds, rps);
    let seed = row_seed(seeds);
    let outside = past_block(seeds, rps);
    let width = comptime![act + if layers > 0 { 1 } else { 0 }];
    if row * width >= out.len() {
        terminate!();
    }
    if outside {
        terminate!();
    }
    // This row's seed's networks (`SeedRows`): each buffer holds `seeds` of them, stacked.
    let wa = seed * (actor.len() / seeds);
    let wc = seed * (cond.len() / seeds);
    let wq = seed * (critic.len() / seeds);
    let stages = comptime![if heun { 2usize } else { 1usize }];
    let mut hs = Array::<f32>::new(hidden);
    let mut h1 = Array::<f32>::new(hidden);
    let mut h2 = Array::<f32>::new(hidden);
    let mut y = Array::<f32>::new(act);
    let mut x = Array::<f32>::new(act);
    let mut f0 = Array::<f32>::new(act);
    let mut f1 = Array::<f32>::new(act);
    // The state's first-layer contribution and the bias, the same at every step.
    for k in 0..hidden {
        let mut acc = actor[at(wa, (obs + act) * hidden + k, seeds)];
        for m in 0..obs {
            acc += s[row * obs + m] * actor[at(wa, m * hidden + k, seeds)];
        }
        hs[k] = acc;
    }
    for j in 0..act {
        y[j] = y0[row * act + j];
    }
    let h = coef[2 * (steps + 1)];
    // The blocks come after the input layer and the conditioning's weight (visit order).
    let blocks_off = comptime![(obs + act + 1) * hidden + skip];
    let out_off = blocks_off + blocks * (hidden * hidden + hidden);
    for i in 0..steps {
        for stage in 0..stages {
            // Stage 0 at (t_i, y); Heun's stage 1 at (t_{i+1}, y + h·f0).
            for j in 0..act {
                let mut v = y[j];
                if stage > 0 {
                    v += h * f0[j];
                }
                x[j] = v;
            }
            let g = i + stage;
            for k in 0..hidden {
                let mut acc = hs[k] + cond[at(wc, g * hidden + k, seeds)];
                for j in 0..act {
                    acc += x[j] * actor[at(wa, (obs + j) * hidden + k, seeds)];
                }
                h1[k] = gelu_tanh(acc);
            }
            for b in 0..blocks {
                let off = blocks_off + b * (hidden * hidden + hidden);
                for k in 0..hidden {
                    let mut acc = actor[at(wa, off + hidden * hidden + k, seeds)];
                    for m in 0..hidden {
                        acc += h1[m] * actor[at(wa, off + m * hidden + k, seeds)];
                    }
                    h2[k] = h1[k] + gelu_tanh(acc);
                }
                for k in 0..hidden {
                    h1[k] = h2[k];
                }
            }
            let a = coef[2 * g];
            let bb = coef[2 * g + 1];
            for j in 0..act {
                let mut acc = actor[at(wa, out_off + hidden * act + j, seeds)];
                for m in 0..hidden {
                    acc += h1[m] * actor[at(wa, out_off + m * act + j, seeds)];
                }
                let f = a * x[j] + bb * acc;
                if stage == 0 {
                    f0[j] = f;
                } else {
                    f1[j] = f;
                }
            }
        }
        for j in 0..act {
            let mut v = y[j];
            if comptime![heun] {
                v += 0.5f32 * h * (f0[j] + f1[j]);
            } else {
                v += h * f0[j];
            }
            y[j] = v;
        }
    }
    for j in 0..act {
        out[row * width + j] = y[j];
    }
    if comptime![layers > 0] {
        // min(Q1, Q2) at (s, tanh(y)): ReLU heads packed one after the other.
        let mut c1 = Array::<f32>::new(ch);
        let mut c2 = Array::<f32>::new(ch);
        let input = obs + act;
        let head = (input + 1) * ch + (layers - 1) * (ch * ch + ch) + ch + 1;
        let mut q = 0.0f32;
        for hd in 0..2usize {
            let base = hd * head;
            for k in 0..ch {
                let mut acc = critic[at(wq, base + input * ch + k, seeds)];
                for m in 0..obs {
                    acc += s[row * obs + m] * critic[at(wq, base + m * ch + k, seeds)];
                }
                for j in 0..act {
                    acc += tanh_c(y[j]) * critic[at(wq, base + (obs + j) * ch + k, seeds)];
                }
                if acc < 0.0f32 {
                    acc = 0.0f32;
                }
                c1[k] = acc;
            }
            for l in 1..layers {
                let off = base + (input + 1) * ch + (l - 1) * (ch * ch + ch);
                for k in 0..ch {
                    let mut acc = critic[at(wq, off + ch * ch + k, seeds)];
                    for m in 0..ch {
                        acc += c1[m] * critic[at(wq, off + m * ch + k, seeds)];
                    }
                    if acc < 0.0f32 {
                        acc = 0.0f32;
                    }
                    c2[k] = acc;
                }
                for k in 0..ch {
                    c1[k] = c2[k];
                }
            }
            let off = base + (input + 1) * ch + (layers - 1) * (ch * ch + ch);
            let mut qh = critic[at(wq, off + ch, seeds)];
            for m in 0..ch {
                qh += c1[m] * critic[at(wq, off + m, seeds)];
            }
            if hd == 0 || qh < q {
                q = qh;
            }
        }
        out[row * width + act] = q;
    }
}

/// One thread per row: both ReLU heads forward at `x = (s, a)`, keeping every hidden
/// pre-activation, then (`grad`) the smaller head's backward pass to the action
/// (`nets::critic`'s `q_min_and_grad`, whose explicit backward this is). Output row
/// `[q, ∂q/∂a (act)]`, `[q]`, or (`td`) `[rew + not_done·q]`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn q_grad_kernel(
    s: &[f32],
    a: &[f32],
    critic: &[f32],
    rew: &[f32],
    not_done: &[f32],
    out: &mut [f32],
    #[comptime] obs: usize,
    #[comptime] act: usize,
    #[comptime] ch: usize,
    #[comptime] layers: usize,
    #[comptime] grad: bool,
    #[comptime] td: bool,
    #[comptime] seeds: usize,
    #[comptime] rps: usize,
) {
    let row = seed_row(seeds, rps);
    let seed = row_seed(seeds);
    let outside = past_block(seeds, rps);
    let width = comptime![if grad { 1 + act } else { 1 }];
    if row * width >= out.len() {
        terminate!();
    }
    if outside {
        terminate!();
    }
    let wq = seed * (critic.len() / seeds);
    let input = comptime![obs + act];
    let head = comptime![(obs + act + 1) * ch + (layers - 1) * (ch * ch + ch) + ch + 1];
    let per_head = comptime![layers * ch];
    // Pre-activations of every hidden layer of both heads: [head][layer][unit].
    let mut z = Array::<f32>::new(comptime![2 * layers * ch]);
    let mut q = 0.0f32;
    let mut pick = 0usize;
    for hd in 0..2usize {
        let base = hd * head;
        let zb = hd * per_head;
        for k in 0..ch {
            let mut acc = critic[at(wq, base + input * ch + k, seeds)];
            for m in 0..obs {
                acc += s[row * obs + m] * critic[at(wq, base + m * ch + k, seeds)];
            }
            for j in 0..act {
                acc += a[row * act + j] * critic[at(wq, base + (obs + j) * ch + k, seeds)];
            }
            z[zb + k] = acc;
        }
        for l in 1..layers {
            let off = base + (input + 1) * ch + (l - 1) * (ch * ch + ch);
            for k in 0..ch {
                let mut acc = critic[at(wq, off + ch * ch + k, seeds)];
                for m in 0..ch {
                    let mut h = z[zb + (l - 1) * ch + m];
                    if h < 0.0f32 {
                        h = 0.0f32;
                    }
                    acc += h * critic[at(wq, off + m * ch + k, seeds)];
                }
                z[zb + l * ch + k] = acc;
            }
        }
        let off = base + (input + 1) * ch + (layers - 1) * (ch * ch + ch);
        let mut qh = critic[at(wq, off + ch, seeds)];
        for m in 0..ch {
            let mut h = z[zb + (layers - 1) * ch + m];
            if h < 0.0f32 {
                h = 0.0f32;
            }
            qh += h * critic[at(wq, off + m, seeds)];
        }
        if hd == 0 || qh < q {
            q = qh;
            pick = hd;
        }
    }
    if td {
        out[row * width] = rew[row] + not_done[row] * q;
    } else {
        out[row * width] = q;
    }
    // A block, not an early `terminate!()` for `!grad`: that compiled to a kernel whose rows
    // after the first read wrong values (lavapipe; `q_and_grad_matches_…` caught it).
    if grad {
        // Backward through the picked head: g = ∂q/∂(pre-activation) of the current layer.
        let base = pick * head;
        let zb = pick * per_head;
        let mut g = Array::<f32>::new(ch);
        let mut g2 = Array::<f32>::new(ch);
        let off = base + (input + 1) * ch + (layers - 1) * (ch * ch + ch);
        for m in 0..ch {
            let mut v = 0.0f32;
            if z[zb + (layers - 1) * ch + m] > 0.0f32 {
                v = critic[at(wq, off + m, seeds)];
            }
            g[m] = v;
        }
        for r in 1..layers {
            let l = layers - r;
            let off = base + (input + 1) * ch + (l - 1) * (ch * ch + ch);
            for m in 0..ch {
                let mut v = 0.0f32;
                if z[zb + (l - 1) * ch + m] > 0.0f32 {
                    for k in 0..ch {
                        v += critic[at(wq, off + m * ch + k, seeds)] * g[k];
                    }
                }
                g2[m] = v;
            }
            for m in 0..ch {
                g[m] = g2[m];
            }
        }
        for j in 0..act {
            let mut v = 0.0f32;
            for k in 0..ch {
                v += critic[at(wq, base + (obs + j) * ch + k, seeds)] * g[k];
            }
            out[row * width + 1 + j] = v;
        }
    }
}

/// `(min(Q1, Q2) [rows], ∂/∂a [rows·act])` of a packed critic at `(s, a)` (`a [rows·act]` on
/// the device: an upload, or a kernel's output): **one dispatch**.
pub fn q_and_grad(
    critic: &FusedCritic,
    s: Vec<f32>,
    a: Tensor<1>,
    (obs, act): (usize, usize),
    seeds: SeedRows,
    device: &Device,
) -> Tensor<2> {
    q_kernel(critic, s, a, true, None, (obs, act), seeds, device)
}

/// `min(Q1, Q2)` of a packed critic at `(s, a)`, `[rows, 1]`, or with `td = (rew, not_done)`
/// the TD target `rew + not_done·min(Q1, Q2)`: one dispatch (`a` on the device, as for
/// [`q_and_grad`]).
pub fn q_min(
    critic: &FusedCritic,
    s: Vec<f32>,
    a: Tensor<1>,
    td: Option<(Vec<f32>, Vec<f32>)>,
    (obs, act): (usize, usize),
    seeds: SeedRows,
    device: &Device,
) -> Tensor<2> {
    q_kernel(critic, s, a, false, td, (obs, act), seeds, device)
}

/// The launch behind [`q_and_grad`] (`grad`) and [`q_min`] (`td`: the TD target's rewards and
/// discounts).
#[allow(clippy::too_many_arguments)]
fn q_kernel(
    critic: &FusedCritic,
    s: Vec<f32>,
    a: Tensor<1>,
    grad: bool,
    td: Option<(Vec<f32>, Vec<f32>)>,
    (obs, act): (usize, usize),
    seeds: SeedRows,
    device: &Device,
) -> Tensor<2> {
    let rows = a.dims()[0] / act;
    let s = if obs > 0 {
        upload(s, device)
    } else {
        upload(vec![0.0], device)
    };
    let (rew, not_done, with_td) = match td {
        Some((r, nd)) => (upload(r, device), upload(nd, device), true),
        None => (upload(vec![0.0], device), upload(vec![0.0], device), false),
    };
    Tensor::from_dispatch(Dispatch::fused_q_grad(
        s.into_dispatch(),
        a.into_dispatch(),
        critic.packed.clone().into_dispatch(),
        rew.into_dispatch(),
        not_done.into_dispatch(),
        rows,
        obs,
        act,
        critic.hidden,
        critic.layers,
        grad,
        with_td,
        seeds,
    ))
}

fn flat(t: Tensor<2>) -> Tensor<1> {
    let n = t.dims().iter().product::<usize>();
    t.reshape([n])
}

/// `v` as a flat tensor on `device`.
pub(crate) fn upload(v: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = v.len();
    Tensor::<1>::from_data(TensorData::new(v, [n]), device)
}

/// What the kernel needs of a policy, prepared once per committed weights (the seam drops it
/// when the actor changes): the packed weights in the module's visit order (the `(s, y)` rows
/// of the first layer, its bias, the conditioning's first-layer weight, which the kernel skips,
/// each block's weight and bias, the output layer's weight and bias: the layout [`FusedAdam`]
/// keeps them in), the conditioning's first-layer contribution at every grid point
/// `[(steps+1)·hidden]` and the drift coefficients `[a_0, b_0, …, a_S, b_S, h]`.
#[derive(Clone)]
pub struct FusedPolicy {
    packed: Tensor<1>,
    cond: Tensor<1>,
    coef: Tensor<1>,
    obs: usize,
    act: usize,
    hidden: usize,
    blocks: usize,
    /// The conditioning's first-layer weight's length, between the input bias and the blocks.
    skip: usize,
    steps: usize,
    heun: bool,
}

impl FusedPolicy {
    /// From a `valid()` policy on a WebGPU device and its parameters packed in visit order
    /// (`packed`: [`FusedAdam::params_of`], free after a step): one
    /// matmul (the conditioning's contribution) and the coefficients' upload.
    pub fn new(
        p: &Policy,
        packed: Tensor<1>,
        lambda: f32,
        ode: &OdeConfig,
        device: &Device,
    ) -> Self {
        let cfg = p.config();
        let (grid, coef) = coefficients(cfg.param, ode);
        let cond = p.input_cond.forward(p.conditioning(&grid, lambda, device));
        Self {
            packed,
            cond: flat(cond),
            coef: upload(coef, device),
            obs: cfg.state_dim,
            act: cfg.act_dim,
            hidden: cfg.hidden,
            blocks: cfg.blocks,
            skip: cfg.cond_dim() * cfg.hidden,
            steps: ode.steps,
            heun: ode.solver == Solver::Heun,
        }
    }
}

impl FusedPolicy {
    /// Several seeds' policies of one shape in one: their packed weights and conditioning
    /// stacked in order (one dispatch per six seeds each), the coefficients shared (the same
    /// ODE). For a launch with [`SeedRows`] of `policies.len()` seeds.
    pub fn stack(policies: &[&FusedPolicy]) -> Self {
        let first = policies[0];
        Self {
            packed: concat(policies.iter().map(|p| p.packed.clone()).collect()),
            cond: concat(policies.iter().map(|p| p.cond.clone()).collect()),
            coef: first.coef.clone(),
            obs: first.obs,
            act: first.act,
            hidden: first.hidden,
            blocks: first.blocks,
            skip: first.skip,
            steps: first.steps,
            heun: first.heun,
        }
    }
}

/// Both critic heads packed for the kernel, `q1` then `q2`, each layer's weight then bias.
#[derive(Clone)]
pub struct FusedCritic {
    packed: Tensor<1>,
    hidden: usize,
    layers: usize,
}

impl FusedCritic {
    /// A critic already packed in this layout (its visit order): [`FusedAdam`]'s output, the
    /// seam's packed Polyak target.
    pub fn from_packed(packed: Tensor<1>, c: &crate::nets::critic::CriticConfig) -> Self {
        Self {
            packed,
            hidden: c.hidden,
            layers: c.layers,
        }
    }

    /// The packed weights (the critic's parameters in visit order).
    pub fn packed(&self) -> &Tensor<1> {
        &self.packed
    }

    /// Several seeds' critics of one shape stacked in order (one dispatch per six seeds), for
    /// a launch with [`SeedRows`] of `critics.len()` seeds.
    pub fn stack(critics: &[&FusedCritic]) -> Self {
        Self {
            packed: concat(critics.iter().map(|c| c.packed.clone()).collect()),
            hidden: critics[0].hidden,
            layers: critics[0].layers,
        }
    }

    pub fn new(c: &Critic) -> Self {
        let mut parts = Vec::new();
        for head in [&c.q1, &c.q2] {
            for l in &head.layers {
                parts.push(flat(l.weight.val()));
                parts.push(l.bias.as_ref().expect("biased critic layers").val());
            }
        }
        Self {
            packed: concat(parts),
            hidden: c.config.hidden,
            layers: c.config.layers,
        }
    }
}

/// The ODE grid (`steps + 1` points, the last exactly `t_end`, as [`Policy::sample`]) and the
/// drift coefficients and step for the kernel: `[a_0, b_0, …, a_S, b_S, h]`.
pub fn coefficients(param: Parameterisation, ode: &OdeConfig) -> (Vec<f32>, Vec<f32>) {
    let (h, grid) = ode.grid();
    let mut coef = Vec::with_capacity(2 * grid.len() + 1);
    for &t in &grid {
        match param {
            Parameterisation::Flow => coef.extend([0.0, 1.0]),
            Parameterisation::Diffusion => {
                let c = param.path().coeffs(t);
                let (a, b, da, db) = (c.alpha, c.beta, c.alpha_dot, c.beta_dot);
                coef.extend([da / a, db - da * b / a]);
            }
        }
    }
    coef.push(h);
    (grid, coef)
}

/// The fused sample of `y0` (`[rows·act]`) under `policy`, scored by `min(Q1, Q2)` of `critic`
/// when given: `[rows, act (+1)]` from **one dispatch** (the inputs are uploads).
pub fn sample(
    policy: &FusedPolicy,
    critic: Option<&FusedCritic>,
    y0: Vec<f32>,
    s: Option<Vec<f32>>,
    seeds: SeedRows,
    device: &Device,
) -> Tensor<2> {
    let rows = y0.len() / policy.act;
    let (packed_critic, ch, layers) = match critic {
        Some(c) => (c.packed.clone(), c.hidden, c.layers),
        None => (upload(vec![0.0], device), 0, 0),
    };
    let s = match s {
        Some(s) if policy.obs > 0 => upload(s, device),
        _ => upload(vec![0.0], device),
    };
    let out = Dispatch::fused_ode(
        upload(y0, device).into_dispatch(),
        s.into_dispatch(),
        policy.packed.clone().into_dispatch(),
        policy.cond.clone().into_dispatch(),
        policy.coef.clone().into_dispatch(),
        packed_critic.into_dispatch(),
        rows,
        policy.obs,
        policy.act,
        policy.hidden,
        policy.blocks,
        policy.skip,
        policy.steps,
        policy.heun,
        ch,
        layers,
        seeds,
    );
    Tensor::from_dispatch(out)
}

/// Adam for the burn seam's modules on WebGPU, over one packed buffer per module: the
/// gradients as the fused training steps write them ([`critic_grads`], [`actor_grads`]), the
/// parameters packed in the same order (the module's visit order; kept from the previous
/// step's output), the moments kept packed. **One dispatch** steps the whole module, and
/// [`split`] one per six parameters puts it back (burn's Adam records about ten per parameter).
/// Same defaults and arithmetic as burn's (`β1 = 0.9`, `β2 = 0.999`, `ε = 1e-5`), so the
/// parity suite compares it with the host kernels' `HostAdam`.
#[derive(Clone, Default)]
pub struct FusedAdam {
    time: i32,
    /// Boxed: a burn tensor is large, and the seam keeps this beside burn's optimiser.
    state: Option<Box<PackedAdam>>,
}

/// What [`FusedAdam`] keeps between steps.
#[derive(Clone)]
struct PackedAdam {
    /// The parameters it steps, in order, with their lengths.
    layout: Vec<(burn::module::ParamId, usize)>,
    /// The moments, `m_i, v_i` interleaved (`[2n]`).
    mv: Tensor<1>,
    /// The module's parameters as the last step wrote them, packed in that order.
    params: Tensor<1>,
}

impl FusedAdam {
    /// Every parameter of `module` packed in visit order: as this optimiser's last step left
    /// them (no dispatch) when it stepped exactly those parameters, else packed now.
    pub fn params_of<M: burn::module::Module>(&self, module: &M) -> Tensor<1> {
        let all = Params::of(module);
        match &self.state {
            Some(st) if st.layout == all.layout => st.params.clone(),
            _ => concat(all.values),
        }
    }

    /// One step of every parameter of `module` from `flat_grads` (their gradients
    /// concatenated in visit order: `critic_grads`, `actor_grads`), each multiplied first, inside
    /// the kernel, by the clip's factor in `stats` (the step's [`step_stats`]: the factor of
    /// `nets::host::optim::clip_scale`, 1 when the norm is within bounds). Returns the stepped
    /// module and its stepped parameters packed in that order (for a critic: [`FusedCritic`]'s
    /// layout).
    pub fn step<M: burn::module::Module>(
        &mut self,
        lr: f64,
        module: M,
        flat_grads: Tensor<1>,
        stats: Tensor<1>,
    ) -> (M, Tensor<1>) {
        self.step_with(lr, module, flat_grads, stats, true)
    }

    /// [`FusedAdam::step`], the module's tensors replaced only with `unpack` (else the module
    /// comes back as it was, its parameters only in the packed result: one dispatch per six
    /// parameters saved, for a caller that keeps the packed copy as the truth and unpacks it
    /// when it needs the module, as the seam does with its critics).
    fn step_with<M: burn::module::Module>(
        &mut self,
        lr: f64,
        module: M,
        flat_grads: Tensor<1>,
        stats: Tensor<1>,
        unpack: bool,
    ) -> (M, Tensor<1>) {
        let device = flat_grads.device();
        let step = self.begin(&module, &device);
        let (p2, mv2) = Dispatch::fused_adam(
            step.params.into_dispatch(),
            flat_grads.into_dispatch(),
            step.mv.into_dispatch(),
            stats.into_dispatch(),
            lr as f32,
            step.factor,
            step.eps,
            1,
        );
        self.finish(
            module,
            step.layout,
            (Tensor::from_dispatch(p2), Tensor::from_dispatch(mv2)),
            unpack,
        )
    }

    /// [`FusedAdam::step`] of several seeds' optimisers at once, `adams[i]` stepping
    /// `modules[i]` (one shape for all) from the `i`-th block of `flat_grads` (their gradients
    /// stacked: `critic_grads` / `actor_grads` of stacked networks) scaled by the `i`-th
    /// step's clip factor in `stats` (`[seeds·STATS]`). **One dispatch** steps them all when
    /// the optimisers are at the same step (the seeds train in lockstep; a seed whose update
    /// was not committed is a step behind, and then each seed steps on its own, after one
    /// dispatch per six seeds to cut the gradients and stats apart). The stacking and the
    /// split of the results cost one dispatch per six seeds per buffer (none for one seed:
    /// [`concat`] and [`split`] of one part). Also returns the stepped parameters stacked (the
    /// next kernels' input).
    pub fn step_seeds<M: burn::module::Module>(
        adams: &mut [&mut FusedAdam],
        lr: f64,
        modules: Vec<M>,
        (flat_grads, stats): (Tensor<1>, Tensor<1>),
        unpack: bool,
    ) -> (Vec<(M, Tensor<1>)>, Tensor<1>) {
        let n = adams.len();
        assert_eq!(modules.len(), n, "one module per optimiser");
        let per = flat_grads.dims()[0] / n;
        let same_time = adams.iter().all(|a| a.time == adams[0].time);
        if !same_time {
            let grads = split(flat_grads, &vec![per; n]);
            let stats = split(stats, &vec![STATS; n]);
            let out: Vec<(M, Tensor<1>)> = adams
                .iter_mut()
                .zip(modules)
                .zip(grads.into_iter().zip(stats))
                .map(|((adam, m), (g, st))| adam.step_with(lr, m, g, st, unpack))
                .collect();
            let stacked = concat(out.iter().map(|(_, p)| p.clone()).collect());
            return (out, stacked);
        }
        let device = flat_grads.device();
        let steps: Vec<AdamStep> = adams
            .iter_mut()
            .zip(&modules)
            .map(|(adam, m)| adam.begin(m, &device))
            .collect();
        let (factor, eps) = (steps[0].factor, steps[0].eps);
        let mut layouts = Vec::with_capacity(n);
        let (mut params, mut mvs) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for st in steps {
            layouts.push(st.layout);
            params.push(st.params);
            mvs.push(st.mv);
        }
        let (p2, mv2) = Dispatch::fused_adam(
            concat(params).into_dispatch(),
            flat_grads.into_dispatch(),
            concat(mvs).into_dispatch(),
            stats.into_dispatch(),
            lr as f32,
            factor,
            eps,
            n,
        );
        let stacked: Tensor<1> = Tensor::from_dispatch(p2);
        let p2 = split(stacked.clone(), &vec![per; n]);
        let mv2 = split(Tensor::from_dispatch(mv2), &vec![2 * per; n]);
        let out = adams
            .iter_mut()
            .zip(modules)
            .zip(layouts)
            .zip(p2.into_iter().zip(mv2))
            .map(|(((adam, m), layout), p_mv)| adam.finish(m, layout, p_mv, unpack))
            .collect();
        (out, stacked)
    }

    /// The start of a step of `module`: the time step, the bias correction, the packed
    /// parameters and moments (kept from the last step, or packed now with zero moments).
    fn begin<M: burn::module::Module>(&mut self, module: &M, device: &Device) -> AdamStep {
        use crate::nets::host::optim::HostAdam;
        self.time += 1;
        let (b1, b2) = (HostAdam::BETA_1, HostAdam::BETA_2);
        let bc2 = (1.0 - b2.powi(self.time)).sqrt();
        let factor = bc2 / (1.0 - b1.powi(self.time));
        let eps = HostAdam::EPSILON * bc2;
        let Params { layout, values } = Params::of(module);
        let (params, mv) = match self.state.take() {
            Some(st) if st.layout == layout => {
                let st = *st;
                (st.params, st.mv)
            }
            // The first step (or another module's parameters, which the seam never passes):
            // pack the parameters, zero moments.
            _ => {
                let total = layout.iter().map(|(_, n)| n).sum::<usize>();
                (concat(values), Tensor::<1>::zeros([2 * total], device))
            }
        };
        AdamStep {
            layout,
            params,
            mv,
            factor,
            eps,
        }
    }

    /// The end of a step: the stepped parameters `p2` (packed), kept with the moments `mv2`
    /// for the next step, and with `unpack` put into `module`. Returns the module and `p2`.
    fn finish<M: burn::module::Module>(
        &mut self,
        module: M,
        layout: Vec<(burn::module::ParamId, usize)>,
        (p2, mv2): (Tensor<1>, Tensor<1>),
        unpack: bool,
    ) -> (M, Tensor<1>) {
        let module = if unpack {
            let lens: Vec<usize> = layout.iter().map(|(_, n)| *n).collect();
            let parts = layout
                .iter()
                .map(|(id, _)| *id)
                .zip(split(p2.clone(), &lens))
                .collect();
            module.map(&mut Replace { parts })
        } else {
            module
        };
        self.state = Some(Box::new(PackedAdam {
            layout,
            mv: mv2,
            params: p2.clone(),
        }));
        (module, p2)
    }
}

/// What [`FusedAdam::begin`] prepared for one step.
struct AdamStep {
    layout: Vec<(burn::module::ParamId, usize)>,
    params: Tensor<1>,
    mv: Tensor<1>,
    factor: f32,
    eps: f32,
}

/// Every float parameter of a module, in visit order: ids, lengths, flattened values.
struct Params {
    layout: Vec<(burn::module::ParamId, usize)>,
    values: Vec<Tensor<1>>,
}

impl Params {
    fn of<M: burn::module::Module>(module: &M) -> Self {
        let mut all = Params {
            layout: Vec::new(),
            values: Vec::new(),
        };
        module.visit(&mut all);
        all
    }
}

impl burn::module::ModuleVisitor for Params {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let value = param.val().inner();
        let n = value.shape().num_elements();
        self.layout.push((param.id, n));
        self.values.push(value.reshape([n]));
    }
}

/// Replaces the parameters named in `parts` by those flat values (reshaped), keeping whether
/// each requires a gradient.
struct Replace {
    parts: std::collections::HashMap<burn::module::ParamId, Tensor<1>>,
}

impl burn::module::ModuleMapper for Replace {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(flat) = self.parts.remove(&id) else {
            return burn::module::Param::from_mapped_value(id, tensor, mapper);
        };
        let (require_grad, checkpointing) = (
            tensor.is_require_grad(),
            tensor.gradient_checkpointing_strategy(),
        );
        let flat = flat.reshape(tensor.shape());
        let mut updated = if tensor.is_autodiff() {
            Tensor::from_inner(flat)
        } else {
            flat
        };
        if let Some(strategy) = checkpointing {
            updated = updated.with_gradient_checkpointing_strategy(strategy);
        }
        if require_grad {
            updated = updated.require_grad();
        }
        burn::module::Param::from_mapped_value(id, updated, mapper)
    }
}

/// `module` with every float parameter, in visit order, taken from `packed` (their
/// concatenation, e.g. [`FusedCritic`]'s layout): one dispatch per six parameters.
pub fn unpack_into<M: burn::module::Module>(module: M, packed: Tensor<1>) -> M {
    struct Ids(Vec<(burn::module::ParamId, usize)>);
    impl burn::module::ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.0.push((param.id, param.val().shape().num_elements()));
        }
    }
    let mut ids = Ids(Vec::new());
    module.visit(&mut ids);
    let lens: Vec<usize> = ids.0.iter().map(|(_, n)| *n).collect();
    let parts = ids
        .0
        .iter()
        .map(|(id, _)| *id)
        .zip(split(packed, &lens))
        .collect();
    module.map(&mut Replace { parts })
}

/// `packed` cut into consecutive flat tensors of `lens` (which sum to its length): one dispatch
/// per six parts (the inverse of [`concat`]); one part is `packed` itself, no dispatch.
pub fn split(packed: Tensor<1>, lens: &[usize]) -> Vec<Tensor<1>> {
    if lens.len() == 1 {
        debug_assert_eq!(
            lens[0],
            packed.dims()[0],
            "the lengths sum to the packed length"
        );
        return vec![packed];
    }
    let mut out = Vec::with_capacity(lens.len());
    let mut offset = 0;
    for chunk in lens.chunks(6) {
        let n = |k: usize| chunk.get(k).copied().unwrap_or(0);
        let parts = Dispatch::fused_unpack(
            packed.clone().into_dispatch(),
            offset,
            n(0),
            n(1),
            n(2),
            n(3),
            n(4),
            n(5),
        );
        let parts = [parts.0, parts.1, parts.2, parts.3, parts.4, parts.5];
        out.extend(
            parts
                .into_iter()
                .take(chunk.len())
                .map(Tensor::from_dispatch),
        );
        offset += chunk.iter().sum::<usize>();
    }
    out
}

/// Each kernel against burn's ops (or the formula) on a native wgpu adapter (`make
/// test-native-wgpu`; Mesa's lavapipe on a machine with no GPU).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{ComputeDevice, read_f32};

    pub(super) fn gpu() -> ComputeDevice {
        pollster::block_on(ComputeDevice::webgpu())
            .expect("a wgpu adapter (e.g. mesa-vulkan-drivers)")
    }

    pub(super) fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        pollster::block_on(read_f32(t)).unwrap()
    }

    /// `|a − b| ≤ tol · max(1, |a|)` everywhere (`a`: the kernel's).
    pub(super) fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tol * x.abs().max(1.0),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    fn ramp(n: usize, scale: f32, device: &Device) -> Tensor<1> {
        upload(
            (0..n)
                .map(|i| (i as f32 - n as f32 / 2.0) * scale)
                .collect(),
            device,
        )
    }

    #[test]
    fn concat_packs_any_number_of_parts_like_cat() {
        let dev = gpu();
        let d = dev.device();
        // 13 parts (three dispatches), lengths 1 to 300, and the pairs of `read_f32_pair`.
        for lens in [
            vec![7],
            vec![3, 1],
            (1..=13).map(|k| k * k + (k % 3) * 100).collect::<Vec<_>>(),
        ] {
            let parts: Vec<Tensor<1>> = lens
                .iter()
                .enumerate()
                .map(|(k, &n)| ramp(n, 0.5 + k as f32, d))
                .collect();
            let want = read(Tensor::cat(parts.clone(), 0));
            assert_eq!(read(concat(parts)), want, "lengths {lens:?}");
        }
    }

    #[test]
    fn split_inverts_concat_and_unpack_into_restores_a_module() {
        use crate::nets::critic::CriticConfig;
        let dev = gpu();
        let d = dev.device();
        let lens: Vec<usize> = (1..=13).map(|k| k * 7 + (k % 4) * 50).collect();
        let parts: Vec<Tensor<1>> = lens
            .iter()
            .enumerate()
            .map(|(k, &n)| ramp(n, 0.25 + k as f32, d))
            .collect();
        let back = split(concat(parts.clone()), &lens);
        assert_eq!(back.len(), parts.len());
        for (k, (a, b)) in parts.into_iter().zip(back).enumerate() {
            assert_eq!(read(a), read(b), "part {k}");
        }
        // A critic's visit order is FusedCritic's layout: unpacking its packing changes nothing,
        // and unpacking another critic's packing gives that critic.
        let cfg = CriticConfig::new(3, 2, 16);
        let (c1, c2) = (
            cfg.init(d, &mut crate::rng::seeded(1)),
            cfg.init(d, &mut crate::rng::seeded(2)),
        );
        let c3 = unpack_into(c1, FusedCritic::new(&c2).packed().clone());
        assert_eq!(
            read(FusedCritic::new(&c3).packed().clone()),
            read(FusedCritic::new(&c2).packed().clone())
        );
        assert_eq!(
            read(c3.q2.layers[1].weight.val()),
            read(c2.q2.layers[1].weight.val())
        );
    }

    #[test]
    fn activations_and_their_gradients_match_burn_and_the_formula() {
        let dev = gpu();
        let ad = dev.autodiff();
        let xs: Vec<f32> = (0..517).map(|i| (i as f32 - 258.0) * 0.05).collect();
        let n = xs.len();
        for gelu in [true, false] {
            let x = upload(xs.clone(), &ad).require_grad();
            let y = activation(x.clone(), gelu);
            let want = if gelu {
                burn::tensor::activation::gelu_approximate(x.clone().inner())
            } else {
                burn::tensor::activation::relu(x.clone().inner())
            };
            close(&read(y.clone().inner()), &read(want), 1e-6, "forward");
            // d/dx Σ y·w = w·act'(x), against central differences of the definition.
            let w = ramp(n, 0.01, &ad);
            let g = (y * w.clone()).sum().backward();
            let got = read(x.grad(&g).unwrap());
            let ws = read(w.inner());
            let f = |v: f64| {
                if gelu {
                    let c = (2.0 / std::f64::consts::PI).sqrt();
                    0.5 * v * (1.0 + (c * (v + 0.044715 * v * v * v)).tanh())
                } else {
                    v.max(0.0)
                }
            };
            for (i, &v) in xs.iter().enumerate() {
                let v = f64::from(v);
                // ReLU's kink: burn's convention (zero at 0) instead of a difference.
                let d = if !gelu && v.abs() < 1e-3 {
                    0.0
                } else {
                    (f(v + 1e-4) - f(v - 1e-4)) / 2e-4
                };
                let want = (f64::from(ws[i]) * d) as f32;
                assert!(
                    (got[i] - want).abs() <= 1e-4,
                    "gelu {gelu} x {v}: {} vs {want}",
                    got[i]
                );
            }
        }
    }

    #[test]
    fn linear_act_and_its_gradients_match_burn() {
        let dev = gpu();
        let ad = dev.autodiff();
        for gelu in [true, false] {
            let layer = crate::nets::mlp::linear(24, 40, &ad, &mut crate::rng::seeded(3));
            let b = ramp(40, 0.05, &ad);
            let layer = burn::nn::Linear {
                weight: layer.weight,
                bias: Some(burn::module::Param::from_tensor(b.require_grad())),
            };
            let x = ramp(24 * 33, 0.01, &ad).reshape([33, 24]).require_grad();
            let w = ramp(40 * 33, 0.003, &ad).reshape([33, 40]);
            let got = linear_act(&layer, x.clone(), gelu);
            let z = layer.forward(x.clone());
            let want = if gelu {
                burn::tensor::activation::gelu_approximate(z)
            } else {
                burn::tensor::activation::relu(z)
            };
            let what = format!("gelu {gelu}");
            close(
                &read(got.clone().inner()),
                &read(want.clone().inner()),
                1e-5,
                &what,
            );
            let (g1, g2) = (
                (got * w.clone()).sum().backward(),
                (want * w).sum().backward(),
            );
            let grad = |t: &Tensor<2>, g| read(t.grad(g).unwrap());
            close(
                &grad(&x, &g1),
                &grad(&x, &g2),
                1e-4,
                &format!("∂/∂x, {what}"),
            );
            let wt = layer.weight.val();
            close(
                &grad(&wt, &g1),
                &grad(&wt, &g2),
                1e-4,
                &format!("∂/∂W, {what}"),
            );
            let bt = layer.bias.as_ref().unwrap().val();
            let (b1, b2) = (read(bt.grad(&g1).unwrap()), read(bt.grad(&g2).unwrap()));
            close(&b1, &b2, 1e-4, &format!("∂/∂b, {what}"));
        }
    }

    #[test]
    fn mse_and_its_gradient_match_burn() {
        let dev = gpu();
        let ad = dev.autodiff();
        let p = ramp(300, 0.013, &ad).reshape([150, 2]).require_grad();
        let y = ramp(300, -0.007, &ad).reshape([150, 2]);
        let got = mse(p.clone(), y.clone());
        let want = (p.clone() - y.clone()).square().mean();
        close(
            &read(got.clone().inner()),
            &read(want.clone().inner()),
            1e-5,
            "loss",
        );
        let (g1, g2) = ((got * 3.0).backward(), (want * 3.0).backward());
        close(
            &read(p.grad(&g1).unwrap()),
            &read(p.grad(&g2).unwrap()),
            1e-5,
            "∂/∂p",
        );
    }

    #[test]
    fn q_and_grad_matches_the_critics_explicit_backward() {
        use crate::nets::critic::CriticConfig;
        let dev = gpu();
        let d = dev.device();
        // No state (sampler-like), a 3-wide state; two and three hidden layers; act 1 and 2.
        for (obs, act, hidden, layers) in [(3, 1, 64, 2), (0, 2, 16, 3), (5, 2, 32, 1)] {
            let mut cfg = CriticConfig::new(obs, act, hidden);
            cfg.layers = layers;
            let critic = cfg.init(d, &mut crate::rng::seeded(7));
            let rows = 300;
            let r = &mut crate::rng::seeded(8);
            let (s, a) = (
                crate::rng::normals(r, rows * obs),
                crate::rng::normals(r, rows * act),
            );
            let out = read(q_and_grad(
                &FusedCritic::new(&critic),
                s.clone(),
                upload(a.clone(), d),
                (obs, act),
                SeedRows::ONE,
                d,
            ));
            let t =
                |v: Vec<f32>, c: usize| Tensor::<2>::from_data(TensorData::new(v, [rows, c]), d);
            let (q, g) = critic.q_min_and_grad(t(s.clone(), obs), t(a.clone(), act));
            let (q, g) = (read(q), read(g));
            let got_q: Vec<f32> = out.chunks(act + 1).map(|r| r[0]).collect();
            let got_g: Vec<f32> = out.chunks(act + 1).flat_map(|r| r[1..].to_vec()).collect();
            let what = format!("obs {obs} act {act} hidden {hidden} layers {layers}");
            close(&got_q, &q, 1e-5, &format!("Q, {what}"));
            close(&got_g, &g, 1e-5, &format!("∇ₐQ, {what}"));
            // The same kernel without the gradient: Q alone, and the TD target.
            let packed = FusedCritic::new(&critic);
            let (rew, nd) = (crate::rng::normals(r, rows), crate::rng::normals(r, rows));
            let only = read(q_min(
                &packed,
                s.clone(),
                upload(a.clone(), d),
                None,
                (obs, act),
                SeedRows::ONE,
                d,
            ));
            close(&only, &q, 1e-5, &format!("Q alone, {what}"));
            let td = Some((rew.clone(), nd.clone()));
            let y = read(q_min(
                &packed,
                s.clone(),
                upload(a.clone(), d),
                td,
                (obs, act),
                SeedRows::ONE,
                d,
            ));
            let want: Vec<f32> = (0..rows).map(|i| rew[i] + nd[i] * q[i]).collect();
            close(&y, &want, 1e-5, &format!("TD target, {what}"));
        }
    }

    #[test]
    fn polyak_is_the_convex_combination() {
        let dev = gpu();
        let d = dev.device();
        let (t, o) = (ramp(1000, 0.1, d), ramp(1000, -0.03, d));
        let got = read(polyak(t.clone(), o.clone(), 0.25));
        close(&got, &read(t * 0.75 + o * 0.25), 1e-6, "polyak");
    }
}
