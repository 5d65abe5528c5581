//! The twin critic's forward pass on the host: the same function as
//! [`crate::nets::critic::Critic::q_min`] (see `nets/critic.rs` for the shape), on plain slices.
//!
//! ```text
//! x = concat(s, a)                                  [rows, obs_dim + act_dim]
//! h = relu(h·W_l + b_l)      (l = 1..layers)        [rows, hidden]
//! q_i = h·W_out + b_out      (heads i = 1, 2)       [rows]
//! q = min(q_1, q_2)
//! ```

use super::dense::{Dense, matmul};

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
    h: Vec<f32>,
    g: Vec<f32>,
    q: Vec<f32>,
}

impl HostCritic {
    /// Checks that the layers chain from `obs_dim + act_dim` to 1; panics naming the layer.
    pub fn new(obs_dim: usize, act_dim: usize, heads: [Vec<Dense>; 2]) -> Self {
        for (i, head) in heads.iter().enumerate() {
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
        let CriticScratch { x, h, g, q: q2 } = scratch;
        x.clear();
        for r in 0..rows {
            x.extend_from_slice(&s[r * o..(r + 1) * o]);
            x.extend_from_slice(&a[r * d..(r + 1) * d]);
        }
        q2.resize(rows, 0.0);
        for (i, head) in self.heads.iter().enumerate() {
            let out = if i == 0 { &mut *q } else { &mut *q2 };
            head_forward(head, x, out, h, g);
        }
        q.iter_mut()
            .zip(q2.iter())
            .for_each(|(a, b)| *a = a.min(*b));
    }
}

/// One ReLU head: `x` `[rows, d_in]` → `out` `[rows]`, with `h`, `g` as scratch.
fn head_forward(layers: &[Dense], x: &[f32], out: &mut [f32], h: &mut Vec<f32>, g: &mut Vec<f32>) {
    let last = layers.len() - 1;
    let rows = out.len();
    for (l, layer) in layers[..last].iter().enumerate() {
        g.resize(rows * layer.d_out, 0.0);
        let input: &[f32] = if l == 0 { x } else { h };
        matmul(input, &layer.w, g, layer.d_in, layer.d_out, false);
        for row in g.chunks_exact_mut(layer.d_out) {
            row.iter_mut()
                .zip(&layer.b)
                .for_each(|(v, b)| *v = (*v + b).max(0.0));
        }
        std::mem::swap(h, g);
    }
    let input: &[f32] = if last == 0 { x } else { h };
    let out_layer = &layers[last];
    matmul(input, &out_layer.w, out, out_layer.d_in, 1, false);
    out.iter_mut().for_each(|v| *v += out_layer.b[0]);
}
