//! The flow / diffusion policy network and its ODE samplers.
//!
//! Shaped like the released RFM actor ("score MLP"):
//!
//! ```text
//! x = concat(s, y, emb(t), emb(λ))                      [n, state_dim + act_dim + 2·emb_width]
//! h = gelu(Dense_hidden(x))                              [n, hidden]
//! h = h + gelu(Dense_hidden(h))      (× blocks)          [n, hidden]
//! out = Dense_act_dim(h)                                 [n, act_dim]
//! ```
//!
//! GELU is the tanh approximation (flax's default, and much cheaper than exact erf on flex).
//! The first Dense is stored as two blocks of its weight matrix — `input` for the rows of `(s, y)`
//! (with the bias) and `input_cond` for the rows of `(emb(t), emb(λ))` (no bias) — which is the
//! same function as one Dense on the concatenation. It lets the sampler compute the
//! conditioning's contribution once per ODE step (`[1, hidden]`, broadcast over rows) instead of
//! once per row, because `t` and `λ` are shared by every row at a step.
//!
//! ## Embeddings
//! `emb(x)` has `emb_width` entries: `cos(x·f_i)` for `i < emb_width/2`, then `sin(x·f_i)`, with
//! `f_i = max_period^(-i / (emb_width/2))`. Time is embedded as `emb(time_scale · t)`
//! (`t ∈ [0, 1]`, `t = 1` is data); the temperature as `emb(λ)`.
//!
//! ## Parameterisations and sampling conventions
//! - [`Parameterisation::Flow`]: the net predicts the velocity `v(t, y, s)` of the linear path
//!   `y_t = t·x1 + (1 − t)·x0`. Sampling integrates `dy/dt = v` from `y(t_start) ~ N(0, I)` at
//!   `t_start = 0.01` to `t_end = 0.99` (the released convention) and returns `y(t_end)`.
//! - [`Parameterisation::Diffusion`]: the net predicts the noise posterior mean
//!   `ε(t, y, s) ≈ E[x0 | y_t = y]` on the VP path (`α = √ᾱ_t`, `β = √(1 − ᾱ_t)`). Sampling
//!   integrates the probability-flow ODE, which in the `(α, β)` frame is
//!   `dy/dt = α̇ E[x1|y] + β̇ E[x0|y] = (α̇/α)·y + (β̇ − α̇β/α)·ε`, over the same time range.
//!
//! Both solvers use a uniform grid of `steps` intervals, `h = (t_end − t_start) / steps`:
//! Euler `y ← y + h·f(t, y)` (one network pass per step), Heun (explicit trapezoid)
//! `ỹ = y + h·f(t, y)`, `y ← y + h/2·(f(t, y) + f(t + h, ỹ))` (two passes per step).
//! Sampling always runs on the model's [`Module::valid`] copy, so no autodiff tape is recorded.

use std::fmt;
use std::str::FromStr;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::nets::host::dense::Dense;
use crate::rfm::path::Path;
use crate::rng::{self, Rng};

/// What the network's output means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Parameterisation {
    /// Velocity on the linear path (`α_t = t`, `β_t = 1 − t`).
    #[default]
    Flow,
    /// Noise posterior mean `E[x0 | x_t]` (ε-prediction) on the VP path.
    Diffusion,
}

impl Parameterisation {
    /// The interpolation path this parameterisation is trained and sampled on.
    pub fn path(self) -> Path {
        match self {
            Self::Flow => Path::Linear,
            Self::Diffusion => Path::Vp,
        }
    }
}

impl FromStr for Parameterisation {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "flow" => Ok(Self::Flow),
            "diffusion" | "eps" => Ok(Self::Diffusion),
            other => Err(PolicyError::UnknownName {
                what: "parameterisation",
                value: other.to_string(),
                allowed: "flow, diffusion",
            }),
        }
    }
}

impl fmt::Display for Parameterisation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Flow => "flow",
            Self::Diffusion => "diffusion",
        })
    }
}

/// ODE solver for sampling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// One network pass per step (the released default).
    #[default]
    Euler,
    /// Explicit trapezoid: two passes per step, second-order accurate.
    Heun,
}

impl FromStr for Solver {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "euler" => Ok(Self::Euler),
            "heun" => Ok(Self::Heun),
            other => Err(PolicyError::UnknownName {
                what: "solver",
                value: other.to_string(),
                allowed: "euler, heun",
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{section} config: {field} = {value} is out of range ({range})")]
    Config {
        section: &'static str,
        field: &'static str,
        value: String,
        range: &'static str,
    },
    #[error("unknown {what} '{value}' (expected {allowed})")]
    UnknownName {
        what: &'static str,
        value: String,
        allowed: &'static str,
    },
}

fn bad<T>(
    section: &'static str,
    field: &'static str,
    value: impl ToString,
    range: &'static str,
) -> Result<T, PolicyError> {
    Err(PolicyError::Config {
        section,
        field,
        value: value.to_string(),
        range,
    })
}

/// Shape of a [`Policy`]. Defaults are playground-sized; the released actor is
/// `hidden = 256, blocks = 2, emb_width = 128`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PolicyConfig {
    /// State (conditioning) dimension; 0 for an unconditional sampler (0..=1024). Default 0.
    pub state_dim: usize,
    /// Action / sample dimension (1..=64). Default 2.
    pub act_dim: usize,
    /// Hidden width (1..=4096). Default 64.
    pub hidden: usize,
    /// Residual blocks `h + gelu(Dense(h))` (0..=16). Default 2.
    pub blocks: usize,
    /// Width of each sinusoidal embedding, even (2..=1024). Default 32.
    pub emb_width: usize,
    /// Longest period of the embedding frequencies (> 1, finite). Default 1000.
    pub max_period: f32,
    /// Time is embedded as `emb(time_scale · t)` (> 0, finite). Default 1000 (the DDPM step-index
    /// scale, so `t ∈ [0, 1]` spans the same range as `max_period`).
    pub time_scale: f32,
    /// What the output means. Default flow.
    pub param: Parameterisation,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            state_dim: 0,
            act_dim: 2,
            hidden: 64,
            blocks: 2,
            emb_width: 32,
            max_period: 1000.0,
            time_scale: 1000.0,
            param: Parameterisation::Flow,
        }
    }
}

impl PolicyConfig {
    pub fn validate(&self) -> Result<(), PolicyError> {
        const S: &str = "policy";
        if self.state_dim > 1024 {
            return bad(S, "stateDim", self.state_dim, "0..=1024");
        }
        if !(1..=64).contains(&self.act_dim) {
            return bad(S, "actDim", self.act_dim, "1..=64");
        }
        if !(1..=4096).contains(&self.hidden) {
            return bad(S, "hidden", self.hidden, "1..=4096");
        }
        if self.blocks > 16 {
            return bad(S, "blocks", self.blocks, "0..=16");
        }
        if !(2..=1024).contains(&self.emb_width) || !self.emb_width.is_multiple_of(2) {
            return bad(S, "embWidth", self.emb_width, "even, 2..=1024");
        }
        if !(self.max_period.is_finite() && self.max_period > 1.0) {
            return bad(S, "maxPeriod", self.max_period, "> 1, finite");
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return bad(S, "timeScale", self.time_scale, "> 0, finite");
        }
        Ok(())
    }

    /// Width of the conditioning features `(emb(t), emb(λ))`.
    pub fn cond_dim(&self) -> usize {
        2 * self.emb_width
    }

    /// The conditioning features `(emb(time_scale·t_i), emb(λ))` of each `t_i` of `t`, row by
    /// row: `[t.len(), 2·emb_width]` (the input of `input_cond`, on the host).
    pub fn conditioning_rows(&self, t: &[f32], lambda: f32) -> Vec<f32> {
        let ts: Vec<f32> = t.iter().map(|t| t * self.time_scale).collect();
        let et = sinusoidal(&ts, self.emb_width, self.max_period);
        let el = sinusoidal(&[lambda], self.emb_width, self.max_period);
        let mut v = Vec::with_capacity(t.len() * self.cond_dim());
        for row in et.chunks(self.emb_width) {
            v.extend_from_slice(row);
            v.extend_from_slice(&el);
        }
        v
    }

    /// Build the network on `device` (use an autodiff device to train it). Weights
    /// ~ U(−1/√fan_in, 1/√fan_in) with `fan_in` the full input width of the layer, biases zero,
    /// drawn from `rng` in layer order (first layer's `(s, y)` rows, then its conditioning rows,
    /// the blocks, the output). Call [`validate`](Self::validate) first.
    pub fn init(&self, device: &Device, rng: &mut Rng) -> Policy {
        crate::nets::host::load::policy_module(&self.init_host(rng), device)
    }

    /// The same weights as [`init`](Self::init) (same draws from `rng`) as a host copy
    /// ([`crate::nets::host::HostPolicy`]), without building a burn module.
    pub fn init_host(&self, rng: &mut Rng) -> crate::nets::host::HostPolicy {
        let d_sy = self.state_dim + self.act_dim;
        let fan_in = d_sy + self.cond_dim();
        let input = uniform_dense(d_sy, self.hidden, fan_in, rng);
        let input_cond = uniform_dense(self.cond_dim(), self.hidden, fan_in, rng);
        let blocks = (0..self.blocks)
            .map(|_| uniform_dense(self.hidden, self.hidden, self.hidden, rng))
            .collect();
        let output = uniform_dense(self.hidden, self.act_dim, self.hidden, rng);
        crate::nets::host::HostPolicy::new(self.clone(), input, input_cond, blocks, output)
    }
}

/// A `[d_in, d_out]` layer with weights ~ U(±1/√fan_in) and a zero bias.
fn uniform_dense(d_in: usize, d_out: usize, fan_in: usize, rng: &mut Rng) -> Dense {
    let bound = 1.0 / (fan_in as f32).sqrt();
    let w: Vec<f32> = (0..d_in * d_out)
        .map(|_| rng::uniform(rng, -bound, bound))
        .collect();
    Dense::new(w, None, d_in, d_out)
}

/// Sinusoidal embedding of each value of `x` (`[m]`) → `[m · width]` row-major:
/// `cos(x·f_i)` for `i < width/2`, then `sin(x·f_i)`, `f_i = max_period^(-i/(width/2))`.
pub fn sinusoidal(x: &[f32], width: usize, max_period: f32) -> Vec<f32> {
    let half = width / 2;
    let freqs: Vec<f32> = (0..half)
        .map(|i| (-(max_period.ln()) * i as f32 / half as f32).exp())
        .collect();
    let mut out = Vec::with_capacity(x.len() * width);
    for &v in x {
        out.extend(freqs.iter().map(|f| (v * f).cos()));
        out.extend(freqs.iter().map(|f| (v * f).sin()));
    }
    out
}

/// ODE settings for [`Policy::sample`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OdeConfig {
    pub solver: Solver,
    /// Number of intervals (1..=1000). Default 10 (released).
    pub steps: usize,
    /// Start time (noise end), default 0.01.
    pub t_start: f32,
    /// End time (data end), default 0.99. Must satisfy `0 < t_start < t_end < 1`.
    pub t_end: f32,
}

impl Default for OdeConfig {
    fn default() -> Self {
        Self {
            solver: Solver::Euler,
            steps: 10,
            t_start: 0.01,
            t_end: 0.99,
        }
    }
}

impl OdeConfig {
    pub fn validate(&self) -> Result<(), PolicyError> {
        const S: &str = "ode";
        if !(1..=1000).contains(&self.steps) {
            return bad(S, "steps", self.steps, "1..=1000");
        }
        let ok = |t: f32| t.is_finite() && t > 0.0 && t < 1.0;
        if !ok(self.t_start) {
            return bad(S, "tStart", self.t_start, "(0, 1)");
        }
        if !ok(self.t_end) || self.t_end <= self.t_start {
            return bad(S, "tEnd", self.t_end, "(tStart, 1)");
        }
        Ok(())
    }

    /// The step `h = (t_end − t_start) / steps` and the grid `t_start + i·h`, `i = 0..=steps`,
    /// its last point exactly `t_end`: the times every sampler (burn, host, fused) evaluates at.
    pub fn grid(&self) -> (f32, Vec<f32>) {
        let h = (self.t_end - self.t_start) / self.steps as f32;
        let times = (0..=self.steps)
            .map(|i| {
                if i == self.steps {
                    self.t_end
                } else {
                    self.t_start + i as f32 * h
                }
            })
            .collect();
        (h, times)
    }

    /// Network passes per sample row.
    pub fn passes(&self) -> usize {
        match self.solver {
            Solver::Euler => self.steps,
            Solver::Heun => 2 * self.steps,
        }
    }
}

/// The result of [`Policy::sample`].
#[derive(Debug)]
pub struct SampleOutput {
    /// `y(t_end)`: `[rows, act_dim]`.
    pub y: Tensor<2>,
    /// `y` at every grid time `t_start, t_start + h, …, t_end` (`steps + 1` tensors of
    /// `[rows, act_dim]`), when asked for.
    pub path: Option<Vec<Tensor<2>>>,
}

/// Sample paths read back to the host: `(t [steps + 1], paths[i][j] = point of row i at t[j])`,
/// each point optionally squashed by tanh (actions). Reads are async (safe on WebGPU).
pub async fn paths_to_host(
    steps: Vec<Tensor<2>>,
    ode: &OdeConfig,
    squash: bool,
) -> Result<(Vec<f32>, Vec<Vec<Vec<f32>>>), crate::device::DeviceError> {
    let h = (ode.t_end - ode.t_start) / ode.steps as f32;
    let ts = (0..steps.len())
        .map(|j| ode.t_start + h * j as f32)
        .collect();
    let mut paths: Vec<Vec<Vec<f32>>> = Vec::new();
    for y in steps {
        let [rows, d] = y.dims();
        let y = if squash { crate::nets::squash(y) } else { y };
        let v = crate::device::read_f32(y).await?;
        paths.resize_with(rows, Vec::new);
        for (i, p) in v.chunks_exact(d).enumerate() {
            paths[i].push(p.to_vec());
        }
    }
    Ok((ts, paths))
}

#[derive(Module, Debug)]
pub struct Policy {
    /// First layer, rows of `(s, y)`, with the bias: `[state_dim + act_dim] → [hidden]`.
    pub input: Linear,
    /// First layer, rows of `(emb(t), emb(λ))`, no bias: `[2·emb_width] → [hidden]`.
    pub input_cond: Linear,
    /// Residual blocks `[hidden] → [hidden]`.
    pub blocks: Vec<Linear>,
    /// `[hidden] → [act_dim]`.
    pub output: Linear,
    #[module(skip)]
    pub config: PolicyConfig,
}

impl Policy {
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Conditioning features `(emb(time_scale·t_i), emb(λ))` for each `t_i` of `t` (`[m]`),
    /// as a `[m, 2·emb_width]` tensor on `device`.
    pub fn conditioning(&self, t: &[f32], lambda: f32, device: &Device) -> Tensor<2> {
        let v = self.config.conditioning_rows(t, lambda);
        Tensor::from_data(
            TensorData::new(v, [t.len(), self.config.cond_dim()]),
            device,
        )
    }

    /// The network output.
    /// - `y`: `[n, act_dim]`
    /// - `state`: `[n, state_dim]`, `None` exactly when `state_dim = 0`
    /// - `cond`: `[n, 2·emb_width]` or `[1, 2·emb_width]` (broadcast to every row), from
    ///   [`conditioning`](Self::conditioning)
    ///
    /// Returns `[n, act_dim]`: the velocity (flow) or the predicted noise (diffusion).
    pub fn forward(&self, y: Tensor<2>, state: Option<Tensor<2>>, cond: Tensor<2>) -> Tensor<2> {
        let x = match state {
            Some(s) => Tensor::cat(vec![s, y], 1),
            None => y,
        };
        self.forward_with_cond_bias(x, self.input_cond.forward(cond))
    }

    /// `x = (s, y)`: `[n, state_dim + act_dim]`; `cond_h`: the conditioning's first-layer
    /// contribution, `[n or 1, hidden]`.
    fn forward_with_cond_bias(&self, x: Tensor<2>, cond_h: Tensor<2>) -> Tensor<2> {
        let mut h = super::gelu(self.input.forward(x) + cond_h);
        for block in &self.blocks {
            h = h.clone() + super::linear_act(block, h, true);
        }
        self.output.forward(h)
    }

    /// Integrate the sampling ODE from `y0` (`[rows, act_dim]`, usually `N(0, I)` draws) for
    /// every row at once: one batched network pass per Euler step (two per Heun step).
    /// `state` is `[rows, state_dim]` (repeat each state once per candidate), `None` exactly
    /// when `state_dim = 0`. All tensors on the plain (non-autodiff) device; the network runs on
    /// its [`Module::valid`] copy, so nothing is recorded for backprop. `ode` must be valid.
    pub fn sample(
        &self,
        y0: Tensor<2>,
        state: Option<Tensor<2>>,
        lambda: f32,
        ode: &OdeConfig,
        keep_path: bool,
    ) -> SampleOutput {
        let net = self.valid();
        let device = y0.device();
        let (h, times) = ode.grid();
        let mut y = y0;
        let mut path = keep_path.then(|| vec![y.clone()]);
        for w in times.windows(2) {
            let (t, t_next) = (w[0], w[1]);
            let f0 = net.drift(y.clone(), state.clone(), t, lambda, &device);
            y = match ode.solver {
                Solver::Euler => y + f0 * h,
                Solver::Heun => {
                    let y_pred = y.clone() + f0.clone() * h;
                    let f1 = net.drift(y_pred, state.clone(), t_next, lambda, &device);
                    y + (f0 + f1) * (0.5 * h)
                }
            };
            if let Some(p) = path.as_mut() {
                p.push(y.clone());
            }
        }
        SampleOutput { y, path }
    }

    /// `dy/dt` at time `t` (shared by all rows) for `y`: `[rows, act_dim]`.
    fn drift(
        &self,
        y: Tensor<2>,
        state: Option<Tensor<2>>,
        t: f32,
        lambda: f32,
        device: &Device,
    ) -> Tensor<2> {
        // The conditioning is one row: its first-layer contribution is computed once and
        // broadcast over the batch.
        let cond_h = self
            .input_cond
            .forward(self.conditioning(&[t], lambda, device));
        let x = match state {
            Some(s) => Tensor::cat(vec![s, y.clone()], 1),
            None => y.clone(),
        };
        let out = self.forward_with_cond_bias(x, cond_h);
        match self.config.param {
            Parameterisation::Flow => out,
            Parameterisation::Diffusion => {
                let c = Parameterisation::Diffusion.path().coeffs(t);
                let (a, b, da, db) = (c.alpha, c.beta, c.alpha_dot, c.beta_dot);
                y * (da / a) + out * (db - da * b / a)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{ComputeDevice, read_f32};
    use burn::module::Param;

    fn block<T>(f: impl Future<Output = T>) -> T {
        pollster::block_on(f)
    }

    /// A flow policy whose velocity is exactly `v(t, y) = a·y + c` (constant in t): zero blocks,
    /// a hidden layer of width 2·act that realises the identity through GELU's odd part
    /// `gelu(z) − gelu(−z) = z`.
    fn linear_field_policy(a: f32, c: [f32; 2], device: &Device) -> Policy {
        let cfg = PolicyConfig {
            act_dim: 2,
            hidden: 4,
            blocks: 0,
            ..Default::default()
        };
        let mut p = cfg.init(device, &mut rng::seeded(0));
        // h = gelu([y, -y]); out = a·(h[0..2] − h[2..4]) + c = a·y + c.
        let w_in = vec![1.0, 0.0, -1.0, 0.0, 0.0, 1.0, 0.0, -1.0];
        p.input.weight = Param::from_data(TensorData::new(w_in, [2, 4]), device);
        p.input_cond.weight = Param::from_data(
            TensorData::new(vec![0.0; cfg.cond_dim() * 4], [cfg.cond_dim(), 4]),
            device,
        );
        let w_out = vec![a, 0.0, 0.0, a, -a, 0.0, 0.0, -a];
        p.output.weight = Param::from_data(TensorData::new(w_out, [4, 2]), device);
        p.output.bias = Some(Param::from_data(TensorData::new(c.to_vec(), [2]), device));
        p
    }

    /// Closed form of `dy/dt = a·y + c` from `t0` to `t1`.
    fn exact(y0: f32, a: f32, c: f32, dt: f32) -> f32 {
        let e = (a * dt).exp();
        y0 * e + c / a * (e - 1.0)
    }

    fn max_err(solver: Solver, steps: usize) -> f32 {
        let d = ComputeDevice::cpu();
        let (a, c) = (-1.5, [0.7, -0.3]);
        let p = linear_field_policy(a, c, d.device());
        let y0v = vec![1.0, -2.0, 0.5, 0.25, -1.0, 3.0];
        let y0 = Tensor::<2>::from_data(TensorData::new(y0v.clone(), [3, 2]), d.device());
        let ode = OdeConfig {
            solver,
            steps,
            ..Default::default()
        };
        let out = block(read_f32(p.sample(y0, None, 1.0, &ode, false).y)).unwrap();
        let dt = ode.t_end - ode.t_start;
        out.iter()
            .zip(&y0v)
            .enumerate()
            .map(|(i, (got, y0))| (got - exact(*y0, a, c[i % 2], dt)).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn euler_and_heun_solve_a_linear_ode() {
        // Euler is first order, Heun second: both converge, Heun much faster.
        let (e10, e40) = (max_err(Solver::Euler, 10), max_err(Solver::Euler, 40));
        let (h10, h40) = (max_err(Solver::Heun, 10), max_err(Solver::Heun, 40));
        assert!(e10 < 0.2 && e40 < 0.3 * e10, "euler {e10} {e40}");
        assert!(h10 < 0.02 && h40 < 0.1 * h10 + 1e-4, "heun {h10} {h40}");
        assert!(h10 < 0.2 * e10, "heun {h10} vs euler {e10} at 10 steps");
        assert!(h40 < 1e-3, "heun 40 steps {h40}");
    }

    #[test]
    fn one_euler_step_by_hand() {
        let d = ComputeDevice::cpu();
        let p = linear_field_policy(2.0, [1.0, 0.0], d.device());
        let y0 = Tensor::<2>::from_data(TensorData::new(vec![0.5, -1.0], [1, 2]), d.device());
        let ode = OdeConfig {
            steps: 1,
            ..Default::default()
        };
        let out = p.sample(y0, None, 1.0, &ode, true);
        let path = out.path.unwrap();
        assert_eq!(path.len(), 2);
        let y = block(read_f32(out.y)).unwrap();
        // y1 = y0 + 0.98·(2·y0 + c)
        assert!((y[0] - (0.5 + 0.98 * 2.0)).abs() < 1e-5, "{y:?}");
        assert!((y[1] - (-1.0 + 0.98 * -2.0)).abs() < 1e-5, "{y:?}");
    }

    #[test]
    fn forward_shapes_with_state_and_broadcast_cond() {
        let d = ComputeDevice::cpu();
        let cfg = PolicyConfig {
            state_dim: 3,
            act_dim: 2,
            hidden: 16,
            emb_width: 8,
            ..Default::default()
        };
        cfg.validate().unwrap();
        let p = cfg.init(d.device(), &mut rng::seeded(1));
        let n = 5;
        let y = Tensor::<2>::from_data(
            TensorData::new(rng::normals(&mut rng::seeded(2), n * 2), [n, 2]),
            d.device(),
        );
        let s = Tensor::<2>::from_data(
            TensorData::new(rng::normals(&mut rng::seeded(3), n * 3), [n, 3]),
            d.device(),
        );
        // Per-row conditioning with equal t equals the broadcast single row.
        let per_row = p.forward(
            y.clone(),
            Some(s.clone()),
            p.conditioning(&[0.3; 5], 1.0, d.device()),
        );
        let shared = p.forward(y, Some(s), p.conditioning(&[0.3], 1.0, d.device()));
        assert_eq!(per_row.dims(), [n, 2]);
        let a = block(read_f32(per_row)).unwrap();
        let b = block(read_f32(shared)).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5);
        }
    }

    #[test]
    fn sinusoidal_layout() {
        let e = sinusoidal(&[0.0, 2.0], 4, 100.0);
        assert_eq!(e.len(), 8);
        assert_eq!(&e[..4], &[1.0, 1.0, 0.0, 0.0]);
        // f = [1, 0.1]
        assert!((e[4] - 2.0f32.cos()).abs() < 1e-6 && (e[5] - 0.2f32.cos()).abs() < 1e-6);
        assert!((e[6] - 2.0f32.sin()).abs() < 1e-6 && (e[7] - 0.2f32.sin()).abs() < 1e-6);
    }

    #[test]
    fn same_seed_same_weights_and_samples() {
        let d = ComputeDevice::cpu();
        let cfg = PolicyConfig::default();
        let run = || {
            let p = cfg.init(d.device(), &mut rng::seeded(9));
            let y0 = Tensor::<2>::from_data(
                TensorData::new(rng::normals(&mut rng::seeded(4), 64), [32, 2]),
                d.device(),
            );
            let ode = OdeConfig {
                solver: Solver::Heun,
                ..Default::default()
            };
            block(read_f32(p.sample(y0, None, 1.0, &ode, false).y)).unwrap()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn bad_configs_name_the_field() {
        let e = PolicyConfig {
            emb_width: 7,
            ..Default::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("embWidth") && e.contains('7') && e.contains("even"),
            "{e}"
        );
        let e = OdeConfig {
            steps: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("steps") && e.contains("1..=1000"), "{e}");
        let e = OdeConfig {
            t_end: 0.005,
            ..Default::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("tEnd"), "{e}");
        let e = "score".parse::<Parameterisation>().unwrap_err().to_string();
        assert!(e.contains("score") && e.contains("flow, diffusion"), "{e}");
    }
}
