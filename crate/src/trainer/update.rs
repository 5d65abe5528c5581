//! The update pieces every agent shares: the TD target, the candidate pick, row helpers, the
//! burn critic step and the global-norm gradient clip (one readback for loss and norm), and the
//! finiteness check that names the step.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};

use super::{TrainConfig, TrainError};
use crate::device::{DeviceError, read_scalar, read_scalar_pair};
use crate::rng::{self, Rng};

/// TD targets `y = r + γ (1 − done) q_next` row by row (`[n]` each; `done` is 1.0 for a
/// terminal transition).
pub fn td_target(rew: &[f32], done: &[f32], q_next: &[f32], gamma: f32) -> Vec<f32> {
    assert!(
        rew.len() == done.len() && rew.len() == q_next.len(),
        "td_target: lengths differ"
    );
    rew.iter()
        .zip(done)
        .zip(q_next)
        .map(|((r, d), q)| r + gamma * (1.0 - d) * q)
        .collect()
}

/// Softmax(`q / λ`) pick (`explore`) or argmax of `q`, per group of `c` consecutive values.
/// Draws one uniform per group when `explore`, all before picking (so the stream does not
/// depend on the scores: the fused WebGPU update draws them ahead), then [`pick_with`].
pub(crate) fn pick_candidates(
    q: &[f32],
    c: usize,
    lambda: f32,
    explore: bool,
    rng: &mut Rng,
) -> Vec<usize> {
    let u = if explore {
        pick_uniforms(rng, q.len() / c.max(1))
    } else {
        Vec::new()
    };
    pick_with(q, c, lambda, explore.then_some(u.as_slice()))
}

/// The uniforms of [`pick_candidates`]'s softmax pick, one per group (`groups`), in `[0, 1)`.
pub(crate) fn pick_uniforms(rng: &mut Rng, groups: usize) -> Vec<f32> {
    (0..groups).map(|_| rng::uniform(rng, 0.0, 1.0)).collect()
}

/// The pick of [`pick_candidates`] with its uniforms given (`u [groups]`, `None`: argmax).
/// A group whose best `Q` is not finite, or whose weights are not (a NaN), takes its argmax
/// (the first maximal value above `−∞`, else the first candidate), as `nets::fused::pick`
/// does.
pub(crate) fn pick_with(q: &[f32], c: usize, lambda: f32, u: Option<&[f32]>) -> Vec<usize> {
    q.chunks(c)
        .enumerate()
        .map(|(gi, g)| {
            let (imax, &qmax) =
                g.iter().enumerate().fold(
                    (0, &f32::NEG_INFINITY),
                    |b, x| if *x.1 > *b.1 { x } else { b },
                );
            let Some(u) = u.filter(|_| qmax.is_finite()) else {
                return imax;
            };
            let w: Vec<f64> = g
                .iter()
                .map(|&v| (f64::from(v - qmax) / f64::from(lambda)).exp())
                .collect();
            let total: f64 = w.iter().sum();
            let mut u = f64::from(u[gi]) * total;
            for (i, wi) in w.iter().enumerate() {
                u -= wi;
                if u < 0.0 {
                    return i;
                }
            }
            imax
        })
        .collect()
}

/// Repeat each row (`width` values) of `x` `times` times: `[n*width]` → `[n*times*width]`.
pub(crate) fn repeat_rows(x: &[f32], width: usize, times: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len() * times);
    for row in x.chunks(width) {
        for _ in 0..times {
            out.extend_from_slice(row);
        }
    }
    out
}

/// A `[rows, cols]` tensor from host data.
pub(crate) fn tensor2(
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    device: &burn::tensor::Device,
) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

/// One staged critic step, shared by every agent: the twin heads' MSE to the TD targets `y`
/// (`[n]`) at `(s, a)` (`[n, obs]`, `[n, act]` on the autodiff device), backward, global-norm
/// clip, Adam. Returns the stepped critic and optimiser, for the caller to commit only once its
/// own checks pass, and the loss; a non-finite loss or gradient norm is an error naming `step`.
pub(crate) async fn critic_step(
    critic: &crate::nets::critic::Critic,
    opt: &burn::optim::ModuleOptimizer,
    s: Tensor<2>,
    a: Tensor<2>,
    y: Vec<f32>,
    cfg: &TrainConfig,
    step: usize,
) -> Result<
    (
        crate::nets::critic::Critic,
        burn::optim::ModuleOptimizer,
        f32,
    ),
    TrainError,
> {
    let n = y.len();
    let y = tensor2(y, n, 1, &s.device());
    let (q1, q2) = critic.forward(s, a);
    let loss = (q1 - y.clone()).square().mean() + (q2 - y).square().mean();
    let value = loss.clone().inner();
    let grads = GradientsParams::from_grads(loss.backward(), critic);
    let c = clip_global_norm(grads, critic, cfg.grad_clip, value).await?;
    let loss_v = check_finite(step, "critic loss", c.loss)?;
    check_finite(step, "critic gradient norm", c.norm)?;
    let mut opt = opt.clone();
    let critic = opt.step(cfg.critic_lr, critic.clone(), c.grads);
    Ok((critic, opt, loss_v))
}

/// Gradients clipped by [`clip_global_norm`], with the loss and the norm they came from.
pub(crate) struct Clipped {
    pub grads: GradientsParams,
    /// The loss, read back in the same transfer as the norm.
    pub loss: f32,
    /// The global L2 norm before clipping (non-finite when a gradient is; 0 without any).
    pub norm: f32,
}

/// The loss (a one-element tensor off the autodiff graph) and the global L2 norm of `grads` of
/// `module`'s parameters, read back together: one readback for both, each being a pipeline
/// flush on WebGPU. The squares are summed over one concatenation of every gradient
/// (`nets::concat`: on WebGPU one copy dispatch per six tensors) and one reduction, not a
/// reduction per tensor.
pub(crate) async fn loss_and_global_norm<M: Module>(
    grads: &GradientsParams,
    module: &M,
    loss: Tensor<1>,
) -> Result<(f32, f32), DeviceError> {
    let (loss, norm, _) = loss_norm_and_flat_grads(grads, module, loss).await?;
    Ok((loss, norm))
}

/// [`loss_and_global_norm`], also returning the concatenation of the gradients it summed (in
/// `module`'s visit order, the parameters that have one; `None` when none has): the reference
/// the fused training steps' tests compare their gradients with (`nets::fused`).
pub(crate) async fn loss_norm_and_flat_grads<M: Module>(
    grads: &GradientsParams,
    module: &M,
    loss: Tensor<1>,
) -> Result<(f32, f32, Option<Tensor<1>>), DeviceError> {
    struct Flat<'a> {
        grads: &'a GradientsParams,
        parts: Vec<Tensor<1>>,
    }
    impl ModuleVisitor for Flat<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let n = g.shape().num_elements();
                self.parts.push(g.reshape([n]));
            }
        }
    }
    let mut flat = Flat {
        grads,
        parts: Vec::new(),
    };
    module.visit(&mut flat);
    if flat.parts.is_empty() {
        return Ok((read_scalar(loss).await?, 0.0, None));
    }
    let all = crate::nets::concat(flat.parts);
    let (l, sq) = read_scalar_pair(loss, all.clone().square().sum()).await?;
    Ok((l, sq.sqrt(), Some(all)))
}

/// Multiply every gradient of `module`'s parameters in `grads` by `scale`.
pub(crate) fn scale_grads<M: Module>(grads: &mut GradientsParams, module: &M, scale: f32) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        scale: f32,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, g * self.scale);
            }
        }
    }
    module.visit(&mut Scale { grads, scale });
}

/// Scale `grads` of `module`'s parameters so their global L2 norm is at most `max_norm`
/// ([`crate::nets::host::optim::clip_scale`]), reading the norm back with `loss`
/// ([`loss_and_global_norm`]). Nothing is scaled when the norm is not finite; the caller
/// rejects the step.
pub(crate) async fn clip_global_norm<M: Module>(
    mut grads: GradientsParams,
    module: &M,
    max_norm: f32,
    loss: Tensor<1>,
) -> Result<Clipped, DeviceError> {
    let (loss, norm) = loss_and_global_norm(&grads, module, loss).await?;
    let scale = crate::nets::host::optim::clip_scale(norm, max_norm);
    if scale != 1.0 {
        scale_grads(&mut grads, module, scale);
    }
    Ok(Clipped { grads, loss, norm })
}

/// Fail with [`TrainError::NonFinite`] unless `value` is finite.
pub(crate) fn check_finite(step: usize, what: &'static str, value: f32) -> Result<f32, TrainError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(TrainError::NonFinite { step, what, value })
    }
}
