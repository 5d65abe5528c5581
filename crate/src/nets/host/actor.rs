//! The actor's training step on the host: the flow-matching regression loss of the policy net,
//! its gradient by an explicit backward pass, the global-norm clip and Adam — the same
//! arithmetic as the burn step in `trainer/rfm.rs` (autodiff of `Policy::forward`,
//! `clip_global_norm`, burn's `Adam` with its defaults), on plain slices.
//!
//! ```text
//! forward (per row i, its own t_i):
//!   z_0 = (s, y)·W_in + b_in + (emb(t_i), emb(λ))·W_cond        h_0 = gelu(z_0)
//!   z_k = h_{k-1}·W_k + b_k                                       h_k = h_{k-1} + gelu(z_k)
//!   out = h_B·W_out + b_out                 loss = mean over rows and dims of (out − target)²
//! backward:
//!   δ_out = 2 (out − target) / (rows·act)
//!   ∇W_out = h_Bᵀ δ_out,  ∇b_out = Σ δ_out,  δh = δ_out W_outᵀ
//!   block k (last first): δz = δh ⊙ gelu'(z_k),  ∇W_k = h_{k-1}ᵀ δz,  ∇b_k = Σ δz,  δh += δz W_kᵀ
//!   δz_0 = δh ⊙ gelu'(z_0),  ∇W_in = (s, y)ᵀ δz_0,  ∇b_in = Σ δz_0,  ∇W_cond = embᵀ δz_0
//! ```
//!
//! Gradients and parameters are listed in burn's visiting order of `Policy`'s float parameters
//! (`input` weight and bias, `input_cond` weight, each block's weight and bias, `output` weight
//! and bias), which is also the order `trainer::export_module` names them in.

use super::dense::{Dense, concat_rows, matmul, matmul_at, matmul_bt};
use super::gelu::exp;
pub use super::optim::{HostAdam, clip, global_norm};
use super::policy::HostPolicy;

/// `√(2/π)`, the tanh-GELU's inner scale (burn's `gelu_approximate`).
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// The tanh-GELU's cubic coefficient.
const GELU_CUBIC: f32 = 0.044_715;

/// `(gelu(z), gelu'(z))` of the tanh approximation `0.5 z (1 + tanh(u))`,
/// `u = √(2/π)(z + 0.044715 z³)`, through `σ = 1/(1 + e^{−2u})` (so `0.5 (1 + tanh u) = σ`):
/// `gelu = z σ`, `gelu' = σ + 2 z σ (1 − σ) u'` — with the host's vectorisable `exp`.
#[inline(always)]
pub fn gelu_and_slope(z: f32) -> (f32, f32) {
    let u = SQRT_2_OVER_PI * (z + GELU_CUBIC * z * z * z);
    let sig = 1.0 / (1.0 + exp(-2.0 * u));
    let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * z * z);
    (z * sig, sig + 2.0 * z * sig * (1.0 - sig) * du)
}

/// `h ← gelu(z)` (or `h ← h + gelu(z)` when `residual`) and `slope ← gelu'(z)`, lane-wise.
fn gelu_forward(z: &[f32], h: &mut [f32], slope: &mut [f32], residual: bool) {
    for ((&z, h), sl) in z.iter().zip(h.iter_mut()).zip(slope.iter_mut()) {
        let (g, d) = gelu_and_slope(z);
        *h = if residual { *h + g } else { g };
        *sl = d;
    }
}

/// Buffers of one actor step, reused across steps.
#[derive(Debug, Default)]
pub struct ActorScratch {
    /// `(s, y)` rows.
    x: Vec<f32>,
    /// `(emb(t_i), emb(λ))` rows.
    e: Vec<f32>,
    /// Pre-activations `z_0..z_B`, their GELU slopes and the activations `h_0..h_B`,
    /// `[rows, hidden]` each.
    z: Vec<Vec<f32>>,
    slope: Vec<Vec<f32>>,
    h: Vec<Vec<f32>>,
    out: Vec<f32>,
    dout: Vec<f32>,
    dh: Vec<f32>,
    dz: Vec<f32>,
}

/// The regression loss `mean((v_θ(t, y, s) − target)²)` over `rows = t.len()` rows and its
/// gradient with respect to every parameter (burn's order, see the module docs).
/// `s`: `[rows, state_dim]`, `y` and `target`: `[rows, act_dim]`, `t`: `[rows]`.
pub fn loss_and_grads(
    p: &HostPolicy,
    s: &[f32],
    y: &[f32],
    t: &[f32],
    lambda: f32,
    target: &[f32],
    ws: &mut ActorScratch,
) -> (f32, Vec<Vec<f32>>) {
    let c = &p.config;
    let (o, a, hid, cd) = (c.state_dim, c.act_dim, c.hidden, c.cond_dim());
    let rows = t.len();
    let d_sy = o + a;
    assert_eq!(s.len(), rows * o, "actor step: s is not [{rows}, {o}]");
    assert_eq!(y.len(), rows * a, "actor step: y is not [{rows}, {a}]");
    assert_eq!(
        target.len(),
        rows * a,
        "actor step: target is not [{rows}, {a}]"
    );
    let nb = p.blocks.len();
    ws.z.resize_with(nb + 1, Vec::new);
    ws.slope.resize_with(nb + 1, Vec::new);
    ws.h.resize_with(nb + 1, Vec::new);

    // Inputs: (s, y) and the conditioning rows.
    concat_rows(&mut ws.x, s, o, y, a);
    ws.e = c.conditioning_rows(t, lambda);

    // Forward.
    {
        let z0 = &mut ws.z[0];
        z0.resize(rows * hid, 0.0);
        matmul(&ws.x, &p.input.w, z0, d_sy, hid, false);
        matmul(&ws.e, &p.input_cond.w, z0, cd, hid, true);
        for row in z0.chunks_exact_mut(hid) {
            row.iter_mut().zip(&p.input.b).for_each(|(v, b)| *v += b);
        }
        ws.h[0].resize(rows * hid, 0.0);
        ws.slope[0].resize(rows * hid, 0.0);
        gelu_forward(z0, &mut ws.h[0], &mut ws.slope[0], false);
    }
    for (k, block) in p.blocks.iter().enumerate() {
        let (hp, hn) = ws.h.split_at_mut(k + 1);
        let zk = &mut ws.z[k + 1];
        zk.resize(rows * hid, 0.0);
        matmul(&hp[k], &block.w, zk, hid, hid, false);
        for row in zk.chunks_exact_mut(hid) {
            row.iter_mut().zip(&block.b).for_each(|(v, b)| *v += b);
        }
        let hk = &mut hn[0];
        hk.clear();
        hk.extend_from_slice(&hp[k]);
        ws.slope[k + 1].resize(rows * hid, 0.0);
        gelu_forward(zk, hk, &mut ws.slope[k + 1], true);
    }
    ws.out.resize(rows * a, 0.0);
    matmul(&ws.h[nb], &p.output.w, &mut ws.out, hid, a, false);
    for row in ws.out.chunks_exact_mut(a) {
        row.iter_mut().zip(&p.output.b).for_each(|(v, b)| *v += b);
    }
    let m = (rows * a) as f64;
    let mut loss = 0.0f64;
    ws.dout.resize(rows * a, 0.0);
    for ((d, &o), &tg) in ws.dout.iter_mut().zip(&ws.out).zip(target) {
        let diff = o - tg;
        loss += (diff as f64).powi(2);
        *d = (2.0 * diff as f64 / m) as f32;
    }
    let loss = (loss / m) as f32;

    // Backward.
    let col_sum = |d: &[f32], width: usize| -> Vec<f32> {
        let mut g = vec![0.0f32; width];
        for row in d.chunks_exact(width) {
            g.iter_mut().zip(row).for_each(|(g, v)| *g += v);
        }
        g
    };
    let mut g_out_w = vec![0.0f32; hid * a];
    matmul_at(&ws.h[nb], &ws.dout, &mut g_out_w, hid, a);
    let g_out_b = col_sum(&ws.dout, a);
    ws.dh.resize(rows * hid, 0.0);
    matmul_bt(&ws.dout, &p.output.w, &mut ws.dh, a, hid, false);
    let mut g_blocks = Vec::with_capacity(nb);
    ws.dz.resize(rows * hid, 0.0);
    for k in (0..nb).rev() {
        for ((dz, &dh), &sl) in ws.dz.iter_mut().zip(&ws.dh).zip(&ws.slope[k + 1]) {
            *dz = dh * sl;
        }
        let mut gw = vec![0.0f32; hid * hid];
        matmul_at(&ws.h[k], &ws.dz, &mut gw, hid, hid);
        let gb = col_sum(&ws.dz, hid);
        // The residual path carries δh through unchanged; the block adds δz·W_kᵀ.
        matmul_bt(&ws.dz, &p.blocks[k].w, &mut ws.dh, hid, hid, true);
        g_blocks.push((gw, gb));
    }
    g_blocks.reverse();
    for ((dz, &dh), &sl) in ws.dz.iter_mut().zip(&ws.dh).zip(&ws.slope[0]) {
        *dz = dh * sl;
    }
    let mut g_in_w = vec![0.0f32; d_sy * hid];
    matmul_at(&ws.x, &ws.dz, &mut g_in_w, d_sy, hid);
    let g_in_b = col_sum(&ws.dz, hid);
    let mut g_cond_w = vec![0.0f32; cd * hid];
    matmul_at(&ws.e, &ws.dz, &mut g_cond_w, cd, hid);

    let mut grads = Vec::with_capacity(2 * nb + 5);
    grads.push(g_in_w);
    grads.push(g_in_b);
    grads.push(g_cond_w);
    for (w, b) in g_blocks {
        grads.push(w);
        grads.push(b);
    }
    grads.push(g_out_w);
    grads.push(g_out_b);
    (loss, grads)
}

impl HostPolicy {
    /// The path names of [`params`](Self::params) (burn's module paths, e.g. `input.weight`,
    /// `blocks.0.bias`), in the same order.
    pub fn param_names(&self) -> Vec<String> {
        let mut out = vec![
            "input.weight".to_string(),
            "input.bias".to_string(),
            "input_cond.weight".to_string(),
        ];
        for i in 0..self.blocks.len() {
            out.push(format!("blocks.{i}.weight"));
            out.push(format!("blocks.{i}.bias"));
        }
        out.push("output.weight".to_string());
        out.push("output.bias".to_string());
        out
    }
}

impl HostPolicy {
    /// Every parameter in burn's order (see the module docs), mutable.
    pub fn params_mut(&mut self) -> Vec<&mut Vec<f32>> {
        let mut out = vec![&mut self.input.w, &mut self.input.b, &mut self.input_cond.w];
        for b in &mut self.blocks {
            out.push(&mut b.w);
            out.push(&mut b.b);
        }
        out.push(&mut self.output.w);
        out.push(&mut self.output.b);
        out
    }

    /// Every parameter in burn's order with its shape, as `(shape, values)`.
    pub fn params(&self) -> Vec<(Vec<usize>, &[f32])> {
        fn dense(l: &Dense) -> (Vec<usize>, &[f32]) {
            (vec![l.d_in, l.d_out], &l.w[..])
        }
        fn bias(l: &Dense) -> (Vec<usize>, &[f32]) {
            (vec![l.d_out], &l.b[..])
        }
        let mut out = vec![
            dense(&self.input),
            bias(&self.input),
            dense(&self.input_cond),
        ];
        for b in &self.blocks {
            out.push(dense(b));
            out.push(bias(b));
        }
        out.push(dense(&self.output));
        out.push(bias(&self.output));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_and_slope_match_the_f64_formula_and_its_derivative() {
        let f = |z: f64| {
            let u = (2.0 / std::f64::consts::PI).sqrt() * (z + 0.044715 * z * z * z);
            0.5 * z * (1.0 + u.tanh())
        };
        for i in 0..=400 {
            let z = -10.0 + i as f64 * 0.05;
            let (g, d) = gelu_and_slope(z as f32);
            let h = 1e-4;
            let fd = (f(z + h) - f(z - h)) / (2.0 * h);
            assert!(
                (g as f64 - f(z)).abs() < 2e-6 * z.abs().max(1.0),
                "gelu({z}) = {g}"
            );
            assert!(
                (d as f64 - fd).abs() < 1e-5,
                "gelu'({z}) = {d}, finite difference {fd}"
            );
        }
    }
}
