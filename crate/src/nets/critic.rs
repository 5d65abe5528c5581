//! The twin Q critic of the released RFM / SAC actor-critics, its orthogonal init and the
//! Polyak average of target copies.
//!
//! ```text
//! x  = concat(s, a)                                   [n, obs_dim + act_dim]
//! h  = relu(Dense_hidden(x))   (× layers)             [n, hidden]
//! q  = Dense_1(h)                                     [n, 1]
//! ```
//!
//! Two independent heads (`q1`, `q2`) form the ensemble; the actor-critics use `min(Q1, Q2)`.
//! Every weight is orthogonal with gain `√2` (flax's `orthogonal(√2)`, as in the released
//! code), every bias zero, drawn from the crate's seeded [`Rng`] in layer order (head 1 first).
//!
//! [`Critic::q_min_and_grad`] returns `min(Q1, Q2)` and `∇_a min(Q1, Q2)` for a batch with a
//! hand-written backward pass through the ReLU layers (the only gradient the estimator needs,
//! without the weight gradients an autodiff pass would also compute). It is exact: the gradient
//! of the smaller head, row by row (ties pick head 1).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::nets::host::HostCritic;
use crate::nets::host::dense::Dense;
use crate::rng::{self, Rng};

/// Shape and init of a [`Critic`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CriticConfig {
    /// Observation width.
    pub obs_dim: usize,
    /// Action width.
    pub act_dim: usize,
    /// Hidden width (released 256).
    pub hidden: usize,
    /// Hidden layers per head (released 2).
    pub layers: usize,
    /// Orthogonal-init gain of every weight (released `√2`).
    pub gain: f32,
}

impl CriticConfig {
    /// A critic config with the released shape (2 hidden layers, gain √2).
    pub fn new(obs_dim: usize, act_dim: usize, hidden: usize) -> Self {
        Self {
            obs_dim,
            act_dim,
            hidden,
            layers: 2,
            gain: std::f32::consts::SQRT_2,
        }
    }

    /// Build both heads on `device` (autodiff for the trained critic, plain for targets).
    pub fn init(&self, device: &Device, rng: &mut Rng) -> Critic {
        crate::nets::host::load::critic_module(&self.init_host(rng), self, device)
    }

    /// The same weights as [`init`](Self::init) (same draws from `rng`) as a host copy.
    pub fn init_host(&self, rng: &mut Rng) -> HostCritic {
        let q1 = self.init_head(rng);
        let q2 = self.init_head(rng);
        HostCritic::new(self.obs_dim, self.act_dim, [q1, q2])
    }

    fn init_head(&self, rng: &mut Rng) -> Vec<Dense> {
        let mut dims = vec![self.obs_dim + self.act_dim];
        dims.extend(std::iter::repeat_n(self.hidden, self.layers));
        dims.push(1);
        dims.windows(2)
            .map(|w| Dense::new(orthogonal(w[0], w[1], self.gain, rng), None, w[0], w[1]))
            .collect()
    }
}

/// A `[d_in, d_out]` matrix (row-major) with orthonormal rows or columns (whichever are
/// fewer) times `gain`: `W Wᵀ = gain² I` when `d_in ≤ d_out`, else `Wᵀ W = gain² I`.
/// Modified Gram–Schmidt (in `f64`) of a standard normal matrix, which equals the `Q` of its
/// QR decomposition with a positive diagonal of `R` (the usual orthogonal init).
pub fn orthogonal(d_in: usize, d_out: usize, gain: f32, rng: &mut Rng) -> Vec<f32> {
    // Orthonormalise `q` vectors of length `p` (p ≥ q).
    let (p, q) = (d_in.max(d_out), d_in.min(d_out));
    let mut cols: Vec<Vec<f64>> = (0..q)
        .map(|_| (0..p).map(|_| f64::from(rng::normal(rng))).collect())
        .collect();
    for j in 0..q {
        let (done, rest) = cols.split_at_mut(j);
        let v = &mut rest[0];
        for u in done.iter() {
            let dot: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        v.iter_mut().for_each(|x| *x /= norm);
    }
    let g = f64::from(gain);
    let mut w = vec![0.0f32; d_in * d_out];
    for r in 0..d_in {
        for c in 0..d_out {
            // d_in ≥ d_out: columns of W are the vectors; else rows are.
            let v = if d_in >= d_out {
                cols[c][r]
            } else {
                cols[r][c]
            };
            w[r * d_out + c] = (g * v) as f32;
        }
    }
    w
}

/// One Q head: ReLU MLP `[n, obs+act] → [n, 1]`.
#[derive(Module, Debug)]
pub struct QHead {
    pub layers: Vec<Linear>,
}

impl QHead {
    /// `x = concat(s, a)`: `[n, obs+act]` → `[n, 1]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut h = x;
        for layer in &self.layers[..last] {
            h = crate::nets::linear_act(layer, h, false);
        }
        self.layers[last].forward(h)
    }

    /// `(Q [n, 1], ∇_x Q [n, obs+act])` by an explicit backward pass (no autodiff tape).
    fn forward_with_input_grad(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let last = self.layers.len() - 1;
        let n = x.dims()[0];
        let mut h = x;
        let mut pre = Vec::with_capacity(last);
        for layer in &self.layers[..last] {
            let z = layer.forward(h);
            pre.push(z.clone());
            h = crate::nets::relu(z);
        }
        let q = self.layers[last].forward(h);
        // dQ/dh_last = W_outᵀ for every row.
        let w_out = self.layers[last].weight.val(); // [hidden, 1]
        let hidden = w_out.dims()[0];
        let mut g: Tensor<2> = w_out.transpose().expand([n, hidden]);
        for (layer, z) in self.layers[..last].iter().zip(pre).rev() {
            g = crate::nets::relu_backward(z, g).matmul(layer.weight.val().transpose());
        }
        (q, g)
    }
}

/// Twin Q ensemble.
#[derive(Module, Debug)]
pub struct Critic {
    pub q1: QHead,
    pub q2: QHead,
    #[module(skip)]
    pub config: CriticConfig,
}

impl Critic {
    pub fn config(&self) -> &CriticConfig {
        &self.config
    }

    /// `s: [n, obs]`, `a: [n, act]` → `(Q1, Q2)`, each `[n, 1]`.
    pub fn forward(&self, s: Tensor<2>, a: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let x = Tensor::cat(vec![s, a], 1);
        (self.q1.forward(x.clone()), self.q2.forward(x))
    }

    /// `min(Q1, Q2)(s, a)`: `[n, 1]`.
    pub fn q_min(&self, s: Tensor<2>, a: Tensor<2>) -> Tensor<2> {
        let (q1, q2) = self.forward(s, a);
        q1.min_pair(q2)
    }

    /// `(min(Q1, Q2) [n, 1], ∇_a min(Q1, Q2) [n, act])` for a batch; the gradient of the
    /// smaller head per row (head 1 on ties). Computed by an explicit backward pass; call it on a
    /// plain-device copy ([`Module::valid`]) so no tape is recorded.
    pub fn q_min_and_grad(&self, s: Tensor<2>, a: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let obs = self.config.obs_dim;
        let act = self.config.act_dim;
        let x = Tensor::cat(vec![s, a], 1);
        let (q1, g1) = self.q1.forward_with_input_grad(x.clone());
        let (q2, g2) = self.q2.forward_with_input_grad(x);
        let n = q1.dims()[0];
        let pick2 = q2.clone().lower(q1.clone());
        let q = q1.mask_where(pick2.clone(), q2);
        let g = g1
            .narrow(1, obs, act)
            .mask_where(pick2.expand([n, act]), g2.narrow(1, obs, act));
        (q, g)
    }
}

/// Polyak average of a target module towards an online module of the same structure:
/// `target ← tau · online + (1 − tau) · target`, parameter by parameter in module order.
/// `online` may live on the autodiff device; the result stays on `target`'s device.
pub fn polyak<M: Module>(target: M, online: &M, tau: f32) -> M {
    let mut collect = CollectFloat::default();
    online.visit(&mut collect);
    let mut mapper = PolyakMapper {
        online: collect.params.into_iter(),
        tau,
    };
    target.map(&mut mapper)
}

/// Every float parameter of a module, flattened to `[numel]` on its plain device, in order.
#[derive(Default)]
struct CollectFloat {
    params: Vec<Tensor<1>>,
}

impl ModuleVisitor for CollectFloat {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.params.push(param.val().inner().flatten::<1>(0, D - 1));
    }
}

struct PolyakMapper<I: Iterator<Item = Tensor<1>>> {
    online: I,
    tau: f32,
}

impl<I: Iterator<Item = Tensor<1>>> ModuleMapper for PolyakMapper<I> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let online = self
            .online
            .next()
            .expect("polyak: target and online modules have different parameter counts");
        let tau = self.tau;
        param.map(|t| {
            let shape = t.shape();
            let device = t.device();
            let o = online.to_device(&device);
            // On WebGPU one kernel per parameter (burn's ops record three).
            #[cfg(feature = "webgpu")]
            if crate::nets::fused::runs_here(&device) {
                let n = shape.num_elements();
                return crate::nets::fused::polyak(t.reshape([n]), o, tau).reshape(shape);
            }
            t * (1.0 - tau) + o.reshape(shape) * tau
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{ComputeDevice, read_f32};
    use burn::tensor::TensorData;

    fn block<T>(f: impl Future<Output = T>) -> T {
        pollster::block_on(f)
    }

    #[test]
    fn orthogonal_rows_or_columns_are_orthonormal() {
        let mut rng = rng::seeded(3);
        for (r, c) in [(5, 12), (12, 5), (7, 7), (1, 4), (4, 1)] {
            let w = orthogonal(r, c, 1.0, &mut rng);
            // Gram matrix over the shorter side.
            // Entry k of vector i: row i when rows are fewer, else column i.
            let (m, len) = (r.min(c), r.max(c));
            let at = |i: usize, k: usize| if r <= c { w[i * c + k] } else { w[k * c + i] };
            for i in 0..m {
                for j in 0..m {
                    let dot: f32 = (0..len).map(|k| at(i, k) * at(j, k)).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-5, "{r}x{c}: ({i},{j}) = {dot}");
                }
            }
        }
        let w = orthogonal(3, 8, 2.0, &mut rng);
        let n0: f32 = w[..8].iter().map(|x| x * x).sum();
        assert!((n0 - 4.0).abs() < 1e-4, "gain² = {n0}");
    }

    #[test]
    fn polyak_arithmetic_on_known_tensors() {
        let d = ComputeDevice::cpu();
        let cfg = CriticConfig::new(2, 1, 3);
        let target = cfg.init(d.device(), &mut rng::seeded(1));
        let online = cfg.init(&d.autodiff(), &mut rng::seeded(2));
        let t0 = block(read_f32(target.q1.layers[0].weight.val())).unwrap();
        let o0 = block(read_f32(online.q1.layers[0].weight.val().inner())).unwrap();
        let tb = block(read_f32(target.q2.layers[2].bias.as_ref().unwrap().val())).unwrap();
        let mixed = polyak(target, &online, 0.25);
        let m0 = block(read_f32(mixed.q1.layers[0].weight.val())).unwrap();
        for ((m, t), o) in m0.iter().zip(&t0).zip(&o0) {
            assert!((m - (0.75 * t + 0.25 * o)).abs() < 1e-6);
        }
        // Zero biases stay zero; the device stays plain.
        let mb = block(read_f32(mixed.q2.layers[2].bias.as_ref().unwrap().val())).unwrap();
        assert_eq!(mb, tb);
        assert!(!mixed.q1.layers[0].weight.val().is_autodiff());
        // tau = 1 copies the online module.
        let copy = polyak(mixed, &online, 1.0);
        let c0 = block(read_f32(copy.q1.layers[0].weight.val())).unwrap();
        assert_eq!(c0, o0);
    }

    #[test]
    fn action_gradient_matches_finite_differences() {
        let d = ComputeDevice::cpu();
        let (obs, act, n) = (3, 2, 6);
        let critic = CriticConfig::new(obs, act, 16).init(d.device(), &mut rng::seeded(5));
        let mut r = rng::seeded(6);
        let s = rng::normals(&mut r, n * obs);
        let a: Vec<f32> = rng::normals(&mut r, n * act)
            .iter()
            .map(|x| 0.8 * x.tanh())
            .collect();
        let q_of = |a: &[f32]| {
            let st = Tensor::<2>::from_data(TensorData::new(s.clone(), [n, obs]), d.device());
            let at = Tensor::<2>::from_data(TensorData::new(a.to_vec(), [n, act]), d.device());
            block(read_f32(critic.q_min(st, at))).unwrap()
        };
        let st = Tensor::<2>::from_data(TensorData::new(s.clone(), [n, obs]), d.device());
        let at = Tensor::<2>::from_data(TensorData::new(a.clone(), [n, act]), d.device());
        let (q, g) = critic.q_min_and_grad(st, at);
        let q = block(read_f32(q)).unwrap();
        let g = block(read_f32(g)).unwrap();
        assert_eq!(q, q_of(&a));
        let eps = 1e-3;
        for j in 0..act {
            let mut ap = a.clone();
            let mut am = a.clone();
            for i in 0..n {
                ap[i * act + j] += eps;
                am[i * act + j] -= eps;
            }
            let (qp, qm) = (q_of(&ap), q_of(&am));
            for i in 0..n {
                let fd = (qp[i] - qm[i]) / (2.0 * eps);
                let an = g[i * act + j];
                assert!(
                    (fd - an).abs() < 2e-2 * (1.0 + an.abs()),
                    "row {i} dim {j}: fd {fd} vs {an}"
                );
            }
        }
    }

    #[test]
    fn action_gradient_matches_autodiff() {
        let d = ComputeDevice::cpu();
        let dev = d.autodiff();
        let (obs, act, n) = (3, 2, 5);
        let critic = CriticConfig::new(obs, act, 8).init(&dev, &mut rng::seeded(7));
        let mut r = rng::seeded(8);
        let s = Tensor::<2>::from_data(
            TensorData::new(rng::normals(&mut r, n * obs), [n, obs]),
            &dev,
        );
        let a = Tensor::<2>::from_data(
            TensorData::new(rng::normals(&mut r, n * act), [n, act]),
            &dev,
        )
        .require_grad();
        let q = critic.q_min(s.clone(), a.clone());
        let grads = q.sum().backward();
        let auto = block(read_f32(a.grad(&grads).unwrap())).unwrap();
        let plain = critic.valid();
        let (_, g) = plain.q_min_and_grad(s.inner(), a.inner());
        let manual = block(read_f32(g)).unwrap();
        for (x, y) in auto.iter().zip(&manual) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }
}
