//! The twin critic's forward pass on the host: the same function as
//! [`crate::nets::critic::Critic::q_min`] (see `nets/critic.rs` for the shape), on plain slices.
//!
//! ```text
//! x = concat(s, a)                                  [rows, obs_dim + act_dim]
//! h = relu(h·W_l + b_l)      (l = 1..layers)        [rows, hidden]
//! q_i = h·W_out + b_out      (heads i = 1, 2)       [rows]
//! q = min(q_1, q_2)
//! ```
//!
//! [`HostCritic::q_min_and_grad`] adds `∇_a min(Q1, Q2)` by the explicit backward pass of
//! [`crate::nets::critic::Critic::q_min_and_grad`]: the smaller head's gradient per row (head 1
//! on ties), `δ_L = w_out ⊙ [z_L > 0]`, `δ_{l-1} = (δ_l·W_lᵀ) ⊙ [z_{l-1} > 0]`, and the action
//! columns of `δ_1·W_1ᵀ`.

use super::dense::{Dense, concat_rows, matmul, matmul_at, matmul_bt};

/// Rows per block of [`HostCritic::q_min_and_grad`]: the activations of a block stay in cache.
const GRAD_BLOCK_ROWS: usize = 256;

/// Host copy of a [`crate::nets::critic::Critic`]'s weights.
#[derive(Clone, Debug, PartialEq)]
pub struct HostCritic {
    pub obs_dim: usize,
    pub act_dim: usize,
    /// The two heads' layers, input first; the last layer of each is `[hidden, 1]`.
    pub heads: [Vec<Dense>; 2],
}

/// Buffers of one block of rows, reused across calls.
#[derive(Debug, Default)]
pub struct CriticScratch {
    x: Vec<f32>,
    acts: Vec<Vec<f32>>,
    q: Vec<f32>,
}

impl HostCritic {
    /// Checks that each head has a hidden layer and that the layers chain from
    /// `obs_dim + act_dim` to 1; panics naming the layer.
    pub fn new(obs_dim: usize, act_dim: usize, heads: [Vec<Dense>; 2]) -> Self {
        for (i, head) in heads.iter().enumerate() {
            assert!(head.len() >= 2, "HostCritic: head {i} has no hidden layer");
            let mut d = obs_dim + act_dim;
            for (l, layer) in head.iter().enumerate() {
                assert_eq!(layer.d_in, d, "HostCritic: head {i} layer {l} input width");
                d = layer.d_out;
            }
            assert_eq!(d, 1, "HostCritic: head {i} does not end in one output");
        }
        Self {
            obs_dim,
            act_dim,
            heads,
        }
    }

    /// `min(Q1, Q2)(s, a)` into `q` (`[rows]`); `s`: `[rows, obs_dim]`, `a`: `[rows, act_dim]`.
    pub fn q_min(&self, s: &[f32], a: &[f32], q: &mut [f32], scratch: &mut CriticScratch) {
        let (o, d) = (self.obs_dim, self.act_dim);
        let rows = q.len();
        assert_eq!(s.len(), rows * o, "q_min: s is not [{rows}, {o}]");
        assert_eq!(a.len(), rows * d, "q_min: a is not [{rows}, {d}]");
        let CriticScratch { x, acts, q: q2 } = scratch;
        concat_rows(x, s, o, a, d);
        q2.resize(rows, 0.0);
        head_value(&self.heads[0], x, q, acts);
        head_value(&self.heads[1], x, q2, acts);
        q.iter_mut()
            .zip(q2.iter())
            .for_each(|(a, b)| *a = a.min(*b));
    }
}

/// Buffers of one block of [`HostCritic::q_min_and_grad`], reused across blocks and calls.
#[derive(Debug, Default)]
pub struct GradScratch {
    x: Vec<f32>,
    /// Post-ReLU activations of each hidden layer of the current head.
    acts: Vec<Vec<f32>>,
    d1: Vec<f32>,
    d2: Vec<f32>,
    /// `dQ/dQ = 1` per row: where the backward pass starts.
    ones: Vec<f32>,
    /// The second head's `q` and action gradient.
    q2: Vec<f32>,
    g2: Vec<f32>,
}

impl HostCritic {
    /// `min(Q1, Q2)(s, a)` into `q` (`[rows]`) and its gradient with respect to `a` into `g`
    /// (`[rows, act_dim]`): the smaller head's per row, head 1 on ties. Rows are processed in
    /// blocks; natively the blocks are spread over the rayon pool.
    pub fn q_min_and_grad(&self, s: &[f32], a: &[f32], q: &mut [f32], g: &mut [f32]) {
        let (o, d) = (self.obs_dim, self.act_dim);
        let rows = q.len();
        assert_eq!(s.len(), rows * o, "q_min_and_grad: s is not [{rows}, {o}]");
        assert_eq!(a.len(), rows * d, "q_min_and_grad: a is not [{rows}, {d}]");
        assert_eq!(g.len(), rows * d, "q_min_and_grad: g is not [{rows}, {d}]");
        let job = |scratch: &mut GradScratch, (b, (qb, gb)): (usize, (&mut [f32], &mut [f32]))| {
            let r0 = b * GRAD_BLOCK_ROWS;
            let r1 = r0 + qb.len();
            self.block_q_grad(&s[r0 * o..r1 * o], &a[r0 * d..r1 * d], qb, gb, scratch);
        };
        #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
        {
            use rayon::prelude::*;
            q.par_chunks_mut(GRAD_BLOCK_ROWS)
                .zip(g.par_chunks_mut(GRAD_BLOCK_ROWS * d))
                .enumerate()
                .for_each_init(GradScratch::default, job);
        }
        #[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
        {
            let mut scratch = GradScratch::default();
            q.chunks_mut(GRAD_BLOCK_ROWS)
                .zip(g.chunks_mut(GRAD_BLOCK_ROWS * d))
                .enumerate()
                .for_each(|item| job(&mut scratch, item));
        }
    }

    fn block_q_grad(
        &self,
        s: &[f32],
        a: &[f32],
        q: &mut [f32],
        g: &mut [f32],
        scratch: &mut GradScratch,
    ) {
        let (o, d) = (self.obs_dim, self.act_dim);
        let rows = q.len();
        let GradScratch {
            x,
            acts,
            d1,
            d2,
            ones,
            q2,
            g2,
        } = scratch;
        concat_rows(x, s, o, a, d);
        ones.resize(rows, 1.0);
        q2.resize(rows, 0.0);
        g2.resize(rows * d, 0.0);
        for (head, q, g) in [
            (&self.heads[0], &mut *q, &mut *g),
            (&self.heads[1], &mut q2[..], &mut g2[..]),
        ] {
            head_value(head, x, q, acts);
            head_backward(head, x, acts, &ones[..rows], d1, d2, None);
            // The action columns of δ_1·W_1ᵀ: rows `obs..obs + act` of W_1 ([d_in, hidden]).
            let first = &head[0];
            let w_act = &first.w[o * first.d_out..(o + d) * first.d_out];
            matmul_bt(d1, w_act, g, first.d_out, d, false);
        }
        for r in 0..rows {
            // Head 2 only where it is strictly smaller (burn's `lower` mask).
            if q2[r] < q[r] {
                q[r] = q2[r];
                g[r * d..(r + 1) * d].copy_from_slice(&g2[r * d..(r + 1) * d]);
            }
        }
    }
}

/// The hidden layers of one ReLU head at `x` (`[rows, d_in]`), keeping every layer's output in
/// `acts` (`acts[l]` is `[rows, hidden]`; its sign is the ReLU mask of the backward pass).
fn hidden_forward(layers: &[Dense], x: &[f32], rows: usize, acts: &mut Vec<Vec<f32>>) {
    let last = layers.len() - 1;
    if acts.len() < last {
        acts.resize_with(last, Vec::new);
    }
    for l in 0..last {
        let layer = &layers[l];
        let (before, rest) = acts.split_at_mut(l);
        let h = &mut rest[0];
        h.resize(rows * layer.d_out, 0.0);
        let input: &[f32] = if l == 0 { x } else { &before[l - 1] };
        matmul(input, &layer.w, h, layer.d_in, layer.d_out, false);
        for row in h.chunks_exact_mut(layer.d_out) {
            row.iter_mut()
                .zip(&layer.b)
                .for_each(|(v, b)| *v = (*v + b).max(0.0));
        }
    }
}

/// One ReLU head's value at `x` (`[rows, d_in]`) into `q` (`[rows]`, bias included), keeping
/// the hidden layers' outputs in `acts` for [`head_backward`].
fn head_value(layers: &[Dense], x: &[f32], q: &mut [f32], acts: &mut Vec<Vec<f32>>) {
    let last = layers.len() - 1;
    hidden_forward(layers, x, q.len(), acts);
    let out = &layers[last];
    matmul(&acts[last - 1], &out.w, q, out.d_in, 1, false);
    q.iter_mut().for_each(|v| *v += out.b[0]);
}

/// The backward pass of one head after [`head_value`], from `dq` (`[rows]`, the loss's
/// derivative by each row's value): leaves `δ_1`, the gradient at the first layer's
/// pre-activation (`[rows, hidden]`), in `d1`. With `grads`, pushes each layer's `(∇W, ∇b)`,
/// output layer first.
fn head_backward(
    layers: &[Dense],
    x: &[f32],
    acts: &[Vec<f32>],
    dq: &[f32],
    d1: &mut Vec<f32>,
    d2: &mut Vec<f32>,
    mut grads: Option<&mut Vec<(Vec<f32>, Vec<f32>)>>,
) {
    let last = layers.len() - 1;
    let rows = dq.len();
    let out = &layers[last];
    let hidden = out.d_in;
    if let Some(g) = grads.as_deref_mut() {
        let mut gw = vec![0.0f32; hidden];
        matmul_at(&acts[last - 1], dq, &mut gw, hidden, 1);
        g.push((gw, vec![dq.iter().sum::<f32>()]));
    }
    // δ_L = dq ⊗ w_out ⊙ [h_L > 0].
    d1.resize(rows * hidden, 0.0);
    for ((dr, hr), &dqr) in d1
        .chunks_exact_mut(hidden)
        .zip(acts[last - 1].chunks_exact(hidden))
        .zip(dq)
    {
        for ((dv, &hv), &w) in dr.iter_mut().zip(hr).zip(&out.w) {
            *dv = if hv > 0.0 { dqr * w } else { 0.0 };
        }
    }
    for l in (0..last).rev() {
        let layer = &layers[l];
        if let Some(g) = grads.as_deref_mut() {
            let input: &[f32] = if l == 0 { x } else { &acts[l - 1] };
            let mut gw = vec![0.0f32; layer.d_in * layer.d_out];
            matmul_at(input, d1, &mut gw, layer.d_in, layer.d_out);
            let mut gb = vec![0.0f32; layer.d_out];
            for row in d1.chunks_exact(layer.d_out) {
                gb.iter_mut().zip(row).for_each(|(g, v)| *g += v);
            }
            g.push((gw, gb));
        }
        if l > 0 {
            // δ_{l-1} = (δ_l·W_lᵀ) ⊙ [h_{l-1} > 0]; W_l is [d_in, d_out], i.e. [n, k] for
            // `matmul_bt`.
            d2.resize(rows * layer.d_in, 0.0);
            matmul_bt(d1, &layer.w, d2, layer.d_out, layer.d_in, false);
            for (dv, &hv) in d2.iter_mut().zip(acts[l - 1].iter()) {
                if hv <= 0.0 {
                    *dv = 0.0;
                }
            }
            std::mem::swap(d1, d2);
        }
    }
}

/// Buffers of the host critic step, reused across steps.
#[derive(Debug, Default)]
pub struct CriticTrainScratch {
    x: Vec<f32>,
    acts: Vec<Vec<f32>>,
    q: Vec<f32>,
    d1: Vec<f32>,
    d2: Vec<f32>,
}

impl HostCritic {
    /// The TD regression loss `mean((Q1 − y)²) + mean((Q2 − y)²)` over `rows = y.len()` rows of
    /// `(s, a)` and its gradient with respect to every parameter, in burn's order (head 1's
    /// layers then head 2's, each weight then bias) — the host version of `trainer::critic_step`'s
    /// loss and autodiff.
    pub fn td_loss_and_grads(
        &self,
        s: &[f32],
        a: &[f32],
        y: &[f32],
        ws: &mut CriticTrainScratch,
    ) -> (f32, Vec<Vec<f32>>) {
        let (o, d) = (self.obs_dim, self.act_dim);
        let rows = y.len();
        assert_eq!(s.len(), rows * o, "critic step: s is not [{rows}, {o}]");
        assert_eq!(a.len(), rows * d, "critic step: a is not [{rows}, {d}]");
        concat_rows(&mut ws.x, s, o, a, d);
        let mut loss = 0.0f32;
        let mut grads = Vec::new();
        for head in &self.heads {
            let (l, g) = head_td_grads(head, rows, y, ws);
            loss += l;
            grads.extend(g);
        }
        (loss, grads)
    }

    /// Every parameter in burn's order (see [`td_loss_and_grads`](Self::td_loss_and_grads)),
    /// mutable.
    pub fn params_mut(&mut self) -> Vec<&mut Vec<f32>> {
        let mut out = Vec::new();
        for head in &mut self.heads {
            for l in head.iter_mut() {
                out.push(&mut l.w);
                out.push(&mut l.b);
            }
        }
        out
    }

    /// The path names of [`params`](Self::params) (burn's module paths, e.g.
    /// `q1.layers.0.weight`), in the same order.
    pub fn param_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (h, head) in self.heads.iter().enumerate() {
            for i in 0..head.len() {
                out.push(format!("q{}.layers.{i}.weight", h + 1));
                out.push(format!("q{}.layers.{i}.bias", h + 1));
            }
        }
        out
    }

    /// Every parameter in burn's order with its shape.
    pub fn params(&self) -> Vec<(Vec<usize>, &[f32])> {
        let mut out = Vec::new();
        for head in &self.heads {
            for l in head {
                out.push((vec![l.d_in, l.d_out], &l.w[..]));
                out.push((vec![l.d_out], &l.b[..]));
            }
        }
        out
    }
}

/// One head's `mean((q − y)²)` and its parameter gradients (weight then bias per layer); the
/// input rows are `ws.x`.
fn head_td_grads(
    layers: &[Dense],
    rows: usize,
    y: &[f32],
    ws: &mut CriticTrainScratch,
) -> (f32, Vec<Vec<f32>>) {
    ws.q.resize(rows, 0.0);
    head_value(layers, &ws.x, &mut ws.q, &mut ws.acts);
    let mut loss = 0.0f64;
    // In place: d mean((q − y)²) / dq = 2 (q − y) / rows.
    for (q, &t) in ws.q.iter_mut().zip(y) {
        let diff = *q - t;
        loss += (diff as f64).powi(2);
        *q = 2.0 * diff / rows as f32;
    }
    let loss = (loss / rows as f64) as f32;
    let mut rev = Vec::with_capacity(layers.len());
    head_backward(
        layers,
        &ws.x,
        &ws.acts,
        &ws.q,
        &mut ws.d1,
        &mut ws.d2,
        Some(&mut rev),
    );
    let mut grads = Vec::with_capacity(2 * layers.len());
    for (w, b) in rev.into_iter().rev() {
        grads.push(w);
        grads.push(b);
    }
    (loss, grads)
}
