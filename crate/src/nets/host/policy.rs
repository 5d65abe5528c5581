//! The policy network's forward pass on the host: the same function as
//! [`crate::nets::Policy::forward`] (see `nets/policy.rs` for the shape), on plain slices.
//!
//! ```text
//! h = gelu(s·W_s + y·W_y + b_in + emb(t, λ)·W_cond)        [rows, hidden]
//! h = h + gelu(h·W_k + b_k)          (k = 1..blocks)        [rows, hidden]
//! out = h·W_out + b_out                                    [rows, act_dim]
//! ```
//!
//! The sampler calls it in three pieces so nothing is recomputed across ODE steps:
//! [`HostPolicy::state_base`] (`s·W_s + b_in`, once per call), [`HostPolicy::cond_hidden`]
//! (`emb(t, λ)·W_cond`, once per step for every row) and [`HostPolicy::drift`] (the rest, plus
//! the diffusion parameterisation's change of variables).

use super::dense::{Dense, matmul};
use super::gelu::{bias_gelu, residual_gelu};
use crate::nets::policy::{Parameterisation, PolicyConfig};

/// Host copy of a [`crate::nets::Policy`]'s weights.
#[derive(Clone, Debug, PartialEq)]
pub struct HostPolicy {
    pub config: PolicyConfig,
    /// `[state_dim + act_dim, hidden]` with the bias; rows `0..state_dim` multiply `s`.
    pub input: Dense,
    /// `[2·emb_width, hidden]`, zero bias.
    pub input_cond: Dense,
    pub blocks: Vec<Dense>,
    /// `[hidden, act_dim]`.
    pub output: Dense,
}

/// Buffers of one block of rows, reused across steps and calls.
#[derive(Debug, Default)]
pub struct Scratch {
    /// `s·W_s + b_in`: `[rows, hidden]`.
    pub base: Vec<f32>,
    h: Vec<f32>,
    z: Vec<f32>,
}

impl HostPolicy {
    /// Checks the layer shapes against `config`; panics naming the layer on a mismatch.
    pub fn new(
        config: PolicyConfig,
        input: Dense,
        input_cond: Dense,
        blocks: Vec<Dense>,
        output: Dense,
    ) -> Self {
        let (d_sy, hid) = (config.state_dim + config.act_dim, config.hidden);
        let shape = |l: &Dense, what: &str, d_in: usize, d_out: usize| {
            assert!(
                l.d_in == d_in && l.d_out == d_out,
                "HostPolicy: {what} is [{}, {}], expected [{d_in}, {d_out}]",
                l.d_in,
                l.d_out
            );
        };
        shape(&input, "input", d_sy, hid);
        shape(&input_cond, "input_cond", config.cond_dim(), hid);
        assert_eq!(blocks.len(), config.blocks, "HostPolicy: block count");
        for b in &blocks {
            shape(b, "block", hid, hid);
        }
        shape(&output, "output", hid, config.act_dim);
        Self {
            config,
            input,
            input_cond,
            blocks,
            output,
        }
    }

    /// `emb(time_scale·t, λ)·W_cond` → `out`: `[hidden]`.
    pub fn cond_hidden(&self, t: f32, lambda: f32, out: &mut [f32]) {
        let c = &self.config;
        let e = c.conditioning_rows(&[t], lambda);
        matmul(&e, &self.input_cond.w, out, c.cond_dim(), c.hidden, false);
    }

    /// `s·W_s + b_in` for `rows` rows of `s` (`[rows, state_dim]`, empty when `state_dim = 0`)
    /// into `base` (resized to `[rows, hidden]`).
    pub fn state_base(&self, s: &[f32], rows: usize, base: &mut Vec<f32>) {
        let (o, hid) = (self.config.state_dim, self.config.hidden);
        assert_eq!(s.len(), rows * o, "state_base: s is not [{rows}, {o}]");
        base.resize(rows * hid, 0.0);
        matmul(s, &self.input.w[..o * hid], base, o, hid, false);
        for row in base.chunks_exact_mut(hid) {
            row.iter_mut().zip(&self.input.b).for_each(|(v, b)| *v += b);
        }
    }

    /// `dy/dt` at time `t` for `y` (`[rows, act_dim]`) into `out` (`[rows, act_dim]`): the net's
    /// output (flow) or its probability-flow drift (diffusion). `scratch.base` must hold
    /// [`state_base`](Self::state_base) of these rows, `cond_h` [`cond_hidden`](Self::cond_hidden)
    /// at `t`.
    pub fn drift(&self, y: &[f32], cond_h: &[f32], t: f32, out: &mut [f32], scratch: &mut Scratch) {
        self.output(y, cond_h, out, scratch);
        if self.config.param == Parameterisation::Diffusion {
            let c = Parameterisation::Diffusion.path().coeffs(t);
            let (ka, kb) = (
                c.alpha_dot / c.alpha,
                c.beta_dot - c.alpha_dot * c.beta / c.alpha,
            );
            out.iter_mut()
                .zip(y)
                .for_each(|(v, y)| *v = y * ka + *v * kb);
        }
    }

    /// The network output for `y` into `out` (same contract as [`drift`](Self::drift)).
    fn output(&self, y: &[f32], cond_h: &[f32], out: &mut [f32], scratch: &mut Scratch) {
        let (o, a, hid) = (
            self.config.state_dim,
            self.config.act_dim,
            self.config.hidden,
        );
        let rows = y.len() / a;
        assert_eq!(
            scratch.base.len(),
            rows * hid,
            "drift: base is not [{rows}, {hid}]"
        );
        assert_eq!(out.len(), rows * a, "drift: out is not [{rows}, {a}]");
        let Scratch { base, h, z } = scratch;
        h.clear();
        h.extend_from_slice(base);
        matmul(y, &self.input.w[o * hid..], h, a, hid, true);
        bias_gelu(h, cond_h);
        z.resize(rows * hid, 0.0);
        for block in &self.blocks {
            matmul(h, &block.w, z, hid, hid, false);
            residual_gelu(h, z, &block.b);
        }
        matmul(h, &self.output.w, out, hid, a, false);
        for row in out.chunks_exact_mut(a) {
            row.iter_mut()
                .zip(&self.output.b)
                .for_each(|(v, b)| *v += b);
        }
    }

    /// The network output (not the drift) for `y` (`[rows, act_dim]`) and `s`
    /// (`[rows, state_dim]`) at one time `t` shared by every row: `[rows, act_dim]`.
    /// Allocates; the sampler uses the pieces above instead.
    pub fn forward(&self, y: &[f32], s: &[f32], t: f32, lambda: f32) -> Vec<f32> {
        let a = self.config.act_dim;
        let rows = y.len() / a;
        let mut cond_h = vec![0.0; self.config.hidden];
        self.cond_hidden(t, lambda, &mut cond_h);
        let mut scratch = Scratch::default();
        self.state_base(s, rows, &mut scratch.base);
        let mut out = vec![0.0; rows * a];
        self.output(y, &cond_h, &mut out, &mut scratch);
        out
    }
}
