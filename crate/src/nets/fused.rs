//! The WebGPU module's own kernels (CubeCL, burn's kernel language, launched through a burn
//! backend extension), where burn's layer-by-layer ops cost many dispatches:
//!
//! - **The fused sampler** ([`sample`]): the whole ODE of every candidate row, and its
//!   twin-critic score, in **one compute dispatch**, in place of the ~40 dispatches per ODE step
//!   that [`Policy::sample`] records. One GPU thread owns one row: it integrates
//!   `dy/dt = a_i·y + b_i·net(t_i, y, s)` over the ODE's grid (Euler or Heun; flow `a = 0,
//!   b = 1`; diffusion's probability-flow coefficients), keeping the hidden activations in
//!   registers, then scores `min(Q1, Q2)(s, tanh(y))`. The weights are packed into one buffer
//!   per network ([`FusedPolicy`], [`FusedCritic`]: a few copy dispatches, cached by the seam
//!   until the next commit); the time/λ conditioning's first-layer contribution at each grid
//!   point is one small matmul. Output rows are `[y (act), q]` (or `[y]` unscored), read back
//!   once.
//! - **Adam** ([`FusedAdam`]): one dispatch per parameter tensor instead of ~10.
//!
//! Same arithmetic as the host and burn paths (tanh-GELU, `tanh` clamped at ±15 as
//! [`crate::nets::squash`] does, because WGSL's `tanh` overflows; burn's Adam); the parity
//! tests compare them (`seam::tests` on a native wgpu adapter, `tests/web.rs` in Chromium).

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::{Device, Tensor, TensorData};
use burn_cubecl::CubeBackend;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use crate::nets::critic::Critic;
use crate::nets::{OdeConfig, Parameterisation, Policy, Solver};

#[backend_extension(Cube)]
pub trait FusedKernels: Backend {
    /// `[rows, width]` from `y0 [rows·act]`, `s [rows·obs]` (one float when `obs == 0`),
    /// the packed actor, the conditioning `[(steps+1)·hidden]`, the coefficients
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
        steps: usize,
        heun: bool,
        critic_hidden: usize,
        critic_layers: usize,
    ) -> FloatTensor<Self>;

    /// One Adam step of a flattened parameter `p` with gradient `g` and moments `m`, `v`
    /// (all `[n]`); `hyper` is `[lr, factor, eps, grad_scale]` ([`FusedAdam`]). Returns `(p', m', v')`.
    fn fused_adam(
        p: FloatTensor<Self>,
        g: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        hyper: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
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
        steps: usize,
        heun: bool,
        critic_hidden: usize,
        critic_layers: usize,
    ) -> CubeTensor {
        let width = act + usize::from(critic_layers > 0);
        let out = empty_device_dtype(
            y0.client.clone(),
            y0.device.clone(),
            burn::tensor::Shape::new([rows, width]),
            y0.dtype,
        );
        let (count, dim) = grid(rows, 64);
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
            steps,
            heun,
            critic_hidden,
            critic_layers,
        );
        out
    }

    fn fused_adam(
        p: CubeTensor,
        g: CubeTensor,
        m: CubeTensor,
        v: CubeTensor,
        hyper: CubeTensor,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        let n = p.meta.num_elements();
        let empty = || {
            empty_device_dtype(
                p.client.clone(),
                p.device.clone(),
                burn::tensor::Shape::new([n]),
                p.dtype,
            )
        };
        let (p2, m2, v2) = (empty(), empty(), empty());
        let (count, dim) = grid(n, 256);
        adam_kernel::launch(
            &p2.client,
            count,
            dim,
            buffer(p),
            buffer(g),
            buffer(m),
            buffer(v),
            buffer(hyper),
            p2.clone().into_buffer_arg(),
            m2.clone().into_buffer_arg(),
            v2.clone().into_buffer_arg(),
        );
        (p2, m2, v2)
    }
}

/// Adam with burn's defaults and arithmetic (the same as `nets::host::optim::HostAdam`) on the
/// gradient `g` times the clip's factor `hyper[3]`: `m ← β1 m + (1−β1) g`,
/// `v ← β2 v + (1−β2) g²`, `p ← p − lr · m·factor / (√v + eps)`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn adam_kernel(
    p: &[f32],
    g: &[f32],
    m: &[f32],
    v: &[f32],
    hyper: &[f32],
    p_out: &mut [f32],
    m_out: &mut [f32],
    v_out: &mut [f32],
) {
    let i = ABSOLUTE_POS;
    if i >= p_out.len() {
        terminate!();
    }
    let gi = g[i] * hyper[3];
    let mm = m[i] * 0.9f32 + gi * (1.0f32 - 0.9f32);
    let vv = v[i] * 0.999f32 + gi * gi * (1.0f32 - 0.999f32);
    p_out[i] = p[i] - (mm * hyper[1] / (vv.sqrt() + hyper[2])) * hyper[0];
    m_out[i] = mm;
    v_out[i] = vv;
}

/// A kernel argument: `t`'s buffer, made contiguous first when it is not.
fn buffer(t: CubeTensor) -> BufferArg {
    burn_cubecl::kernel::into_contiguous(t).into_buffer_arg()
}

/// One thread per item: `n` items in 1-D cubes of `per_cube` threads.
fn grid(n: usize, per_cube: usize) -> (CubeCount, CubeDim) {
    (
        CubeCount::Static(n.div_ceil(per_cube).max(1) as u32, 1, 1),
        CubeDim::new_1d(per_cube as u32),
    )
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

/// The tanh approximation of GELU (flax's default; `gelu_approximate` in burn, `nets::host`).
#[cube]
fn gelu(x: f32) -> f32 {
    0.5f32 * x * (1.0f32 + tanh_c(0.797_884_6f32 * (x + 0.044_715f32 * x * x * x)))
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
    #[comptime] steps: usize,
    #[comptime] heun: bool,
    #[comptime] ch: usize,
    #[comptime] layers: usize,
) {
    let row = ABSOLUTE_POS;
    let width = comptime![act + if layers > 0 { 1 } else { 0 }];
    if row * width >= out.len() {
        terminate!();
    }
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
        let mut acc = actor[(obs + act) * hidden + k];
        for m in 0..obs {
            acc += s[row * obs + m] * actor[m * hidden + k];
        }
        hs[k] = acc;
    }
    for j in 0..act {
        y[j] = y0[row * act + j];
    }
    let h = coef[2 * (steps + 1)];
    let out_off = (obs + act + 1) * hidden + blocks * (hidden * hidden + hidden);
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
                let mut acc = hs[k] + cond[g * hidden + k];
                for j in 0..act {
                    acc += x[j] * actor[(obs + j) * hidden + k];
                }
                h1[k] = gelu(acc);
            }
            for b in 0..blocks {
                let off = (obs + act + 1) * hidden + b * (hidden * hidden + hidden);
                for k in 0..hidden {
                    let mut acc = actor[off + hidden * hidden + k];
                    for m in 0..hidden {
                        acc += h1[m] * actor[off + m * hidden + k];
                    }
                    h2[k] = h1[k] + gelu(acc);
                }
                for k in 0..hidden {
                    h1[k] = h2[k];
                }
            }
            let a = coef[2 * g];
            let bb = coef[2 * g + 1];
            for j in 0..act {
                let mut acc = actor[out_off + hidden * act + j];
                for m in 0..hidden {
                    acc += h1[m] * actor[out_off + m * act + j];
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
                let mut acc = critic[base + input * ch + k];
                for m in 0..obs {
                    acc += s[row * obs + m] * critic[base + m * ch + k];
                }
                for j in 0..act {
                    acc += tanh_c(y[j]) * critic[base + (obs + j) * ch + k];
                }
                if acc < 0.0f32 {
                    acc = 0.0f32;
                }
                c1[k] = acc;
            }
            for l in 1..layers {
                let off = base + (input + 1) * ch + (l - 1) * (ch * ch + ch);
                for k in 0..ch {
                    let mut acc = critic[off + ch * ch + k];
                    for m in 0..ch {
                        acc += c1[m] * critic[off + m * ch + k];
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
            let mut qh = critic[off + ch];
            for m in 0..ch {
                qh += c1[m] * critic[off + m];
            }
            if hd == 0 || qh < q {
                q = qh;
            }
        }
        out[row * width + act] = q;
    }
}

fn flat(t: Tensor<2>) -> Tensor<1> {
    let n = t.dims().iter().product::<usize>();
    t.reshape([n])
}

fn upload(v: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = v.len();
    Tensor::<1>::from_data(TensorData::new(v, [n]), device)
}

/// What the kernel needs of a policy, prepared once per committed weights (the seam drops it
/// when the actor changes): the packed weights (the `(s, y)` rows of the first layer, its bias,
/// each block's weight and bias, the output layer's weight and bias), the conditioning's
/// first-layer contribution at every grid point `[(steps+1)·hidden]` and the drift
/// coefficients `[a_0, b_0, …, a_S, b_S, h]`.
pub struct FusedPolicy {
    packed: Tensor<1>,
    cond: Tensor<1>,
    coef: Tensor<1>,
    obs: usize,
    act: usize,
    hidden: usize,
    blocks: usize,
    steps: usize,
    heun: bool,
}

impl FusedPolicy {
    /// From a `valid()` policy on a WebGPU device: a handful of copy dispatches and one matmul.
    pub fn new(p: &Policy, lambda: f32, ode: &OdeConfig, device: &Device) -> Self {
        let cfg = p.config();
        let mut parts = vec![
            flat(p.input.weight.val()),
            p.input.bias.as_ref().expect("a biased input layer").val(),
        ];
        for b in &p.blocks {
            parts.push(flat(b.weight.val()));
            parts.push(b.bias.as_ref().expect("biased blocks").val());
        }
        parts.push(flat(p.output.weight.val()));
        parts.push(p.output.bias.as_ref().expect("a biased output layer").val());
        let (grid, coef) = coefficients(cfg.param, ode);
        let cond = p.input_cond.forward(p.conditioning(&grid, lambda, device));
        Self {
            packed: Tensor::cat(parts, 0),
            cond: flat(cond),
            coef: upload(coef, device),
            obs: cfg.state_dim,
            act: cfg.act_dim,
            hidden: cfg.hidden,
            blocks: cfg.blocks,
            steps: ode.steps,
            heun: ode.solver == Solver::Heun,
        }
    }
}

/// Both critic heads packed for the kernel, `q1` then `q2`, each layer's weight then bias.
pub struct FusedCritic {
    packed: Tensor<1>,
    hidden: usize,
    layers: usize,
}

impl FusedCritic {
    pub fn new(c: &Critic) -> Self {
        let mut parts = Vec::new();
        for head in [&c.q1, &c.q2] {
            for l in &head.layers {
                parts.push(flat(l.weight.val()));
                parts.push(l.bias.as_ref().expect("biased critic layers").val());
            }
        }
        Self {
            packed: Tensor::cat(parts, 0),
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
        policy.steps,
        policy.heun,
        ch,
        layers,
    );
    Tensor::from_dispatch(out)
}

/// Adam for the burn seam's modules on WebGPU: one dispatch per parameter tensor (burn's Adam
/// records about ten). Same defaults and arithmetic as burn's (`β1 = 0.9`, `β2 = 0.999`,
/// `ε = 1e-5`), so the parity suite compares it with the host kernels' `HostAdam`.
#[derive(Clone, Default)]
pub struct FusedAdam {
    time: i32,
    moments: std::collections::HashMap<burn::module::ParamId, (Tensor<1>, Tensor<1>)>,
}

impl FusedAdam {
    /// One step of every parameter of `module` that has a gradient in `grads`, each gradient
    /// multiplied by `grad_scale` first (the global-norm clip's factor,
    /// `nets::host::optim::clip_scale`: 1 when the norm is within bounds), inside the kernel.
    pub fn step<M: burn::module::Module>(
        &mut self,
        lr: f64,
        module: M,
        mut grads: burn::optim::GradientsParams,
        grad_scale: f32,
    ) -> M {
        use crate::nets::host::optim::HostAdam;
        self.time += 1;
        let (b1, b2) = (HostAdam::BETA_1, HostAdam::BETA_2);
        let bc2 = (1.0 - b2.powi(self.time)).sqrt();
        let factor = bc2 / (1.0 - b1.powi(self.time));
        let hyper = [lr as f32, factor, HostAdam::EPSILON * bc2, grad_scale];
        let mut mapper = AdamMapper {
            grads: &mut grads,
            moments: &mut self.moments,
            hyper,
            uploaded: None,
        };
        module.map(&mut mapper)
    }
}

struct AdamMapper<'a> {
    grads: &'a mut burn::optim::GradientsParams,
    moments: &'a mut std::collections::HashMap<burn::module::ParamId, (Tensor<1>, Tensor<1>)>,
    hyper: [f32; 4],
    /// `hyper` on the device, uploaded for the first parameter and shared by the rest.
    uploaded: Option<Tensor<1>>,
}

impl burn::module::ModuleMapper for AdamMapper<'_> {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return burn::module::Param::from_mapped_value(id, tensor, mapper);
        };
        let (require_grad, checkpointing) = (
            tensor.is_require_grad(),
            tensor.gradient_checkpointing_strategy(),
        );
        let shape = tensor.shape();
        let inner = tensor.inner();
        let device = inner.device();
        let n = shape.num_elements();
        let (m, v) = self.moments.remove(&id).unwrap_or_else(|| {
            let z = Tensor::<1>::zeros([n], &device);
            (z.clone(), z)
        });
        let hyper = self
            .uploaded
            .get_or_insert_with(|| upload(self.hyper.to_vec(), &device))
            .clone();
        let (p2, m2, v2) = Dispatch::fused_adam(
            inner.reshape([n]).into_dispatch(),
            grad.reshape([n]).into_dispatch(),
            m.into_dispatch(),
            v.into_dispatch(),
            hyper.into_dispatch(),
        );
        self.moments
            .insert(id, (Tensor::from_dispatch(m2), Tensor::from_dispatch(v2)));
        let p2: Tensor<1> = Tensor::from_dispatch(p2);
        let mut updated = Tensor::from_inner(p2.reshape(shape));
        if let Some(strategy) = checkpointing {
            updated = updated.with_gradient_checkpointing_strategy(strategy);
        }
        if require_grad {
            updated = updated.require_grad();
        }
        burn::module::Param::from_mapped_value(id, updated, mapper)
    }
}
