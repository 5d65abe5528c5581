//! burn modules (the glue layer): networks are built only through their configs' `init`, with
//! weights drawn from the crate's seeded [`crate::rng::Rng`] so the same seed gives the same
//! network on every backend. [`host`] runs the policy sampler and critic forward on plain
//! slices for the CPU.

pub mod critic;
#[cfg(feature = "webgpu")]
pub mod fused;
pub mod host;
pub mod mlp;
pub mod policy;

pub use mlp::{Activation, Mlp, MlpConfig};
pub use policy::{OdeConfig, Parameterisation, Policy, PolicyConfig, PolicyError, Solver};

use burn::tensor::Tensor;
use burn::tensor::activation::{gelu_approximate, tanh};

/// tanh-GELU (burn's `gelu_approximate`, flax's default), the policy's activation. On a WebGPU
/// device it is one fused kernel forward and one backward (`fused::DifferentiableKernels`) instead
/// of burn's ~8 and ~15 element-wise dispatches.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "webgpu")]
    if fused::runs_here(&x.device()) {
        return fused::activation(x, true);
    }
    gelu_approximate(x)
}

/// `Tensor::cat(parts, 0)` of flat tensors (at least one); on a WebGPU device one dispatch per
/// six parts instead of one per part (`fused::concat`).
pub fn concat(parts: Vec<Tensor<1>>) -> Tensor<1> {
    #[cfg(feature = "webgpu")]
    if fused::runs_here(&parts[0].device()) {
        return fused::concat(parts);
    }
    Tensor::cat(parts, 0)
}

/// `mean((p − y)²)` as a one-element tensor, the steps' regression loss; on a WebGPU device one
/// fused kernel each way (burn's ops record ~4 forward and ~8 backward).
pub fn mse<const D: usize>(p: Tensor<D>, y: Tensor<D>) -> Tensor<1> {
    #[cfg(feature = "webgpu")]
    if fused::runs_here(&p.device()) {
        return fused::mse(p, y);
    }
    (p - y).square().mean()
}

/// `act(layer(x))` for a biased linear layer and ReLU or tanh-GELU (`gelu`); on a WebGPU device
/// the bias and the activation are one fused kernel each way after the matrix product.
pub fn linear_act(layer: &burn::nn::Linear, x: Tensor<2>, gelu: bool) -> Tensor<2> {
    #[cfg(feature = "webgpu")]
    if fused::runs_here(&x.device()) && layer.bias.is_some() {
        return fused::linear_act(layer, x, gelu);
    }
    let z = layer.forward(x);
    if gelu {
        gelu_approximate(z)
    } else {
        burn::tensor::activation::relu(z)
    }
}

/// ReLU, the critic's activation; on a WebGPU device one fused kernel each way.
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "webgpu")]
    if fused::runs_here(&x.device()) {
        return fused::activation(x, false);
    }
    burn::tensor::activation::relu(x)
}

/// `grad · relu'(z)` (zero where `z ≤ 0`) for an explicit backward pass; on a WebGPU device one
/// fused kernel instead of a comparison, a cast and a product.
pub fn relu_backward<const D: usize>(z: Tensor<D>, grad: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "webgpu")]
    if fused::runs_here(&z.device()) {
        return fused::activation_backward(z, grad, false);
    }
    grad * z.greater_elem(0.0).float()
}

/// `tanh(x)` that stays finite on every backend: the input is clamped to `±SQUASH_CLAMP` first.
///
/// WGSL's built-in `tanh` is specified through `exp`, and WebGPU implementations (SwiftShader's
/// among them) return NaN once `exp(|x|)` overflows; the RFM posterior draws latents with
/// magnitudes in the hundreds at small `t`. In f32, `tanh(x)` already rounds to exactly `±1`
/// for `|x| > 9.02`, so the clamp changes no value on the CPU, and its gradient beyond the clamp
/// (zero instead of `< 1e-12`) is the same for every practical purpose.
pub fn squash<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    tanh(x.clamp(-SQUASH_CLAMP, SQUASH_CLAMP))
}

/// Where [`squash`] clamps its input (`tanh(15)` is `1.0` in f32).
pub const SQUASH_CLAMP: f32 = 15.0;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{ComputeDevice, read_f32};
    use burn::tensor::TensorData;

    #[test]
    fn squash_equals_tanh_in_f32_and_saturates_instead_of_nan() {
        let xs = [
            -1e30f32, -500.0, -15.0, -9.1, -1.0, 0.0, 0.3, 9.1, 15.0, 88.8, 1e30,
        ];
        let dev = ComputeDevice::cpu();
        let t = Tensor::<1>::from_data(TensorData::new(xs.to_vec(), [xs.len()]), dev.device());
        let got = pollster::block_on(read_f32(squash(t))).unwrap();
        for (x, y) in xs.iter().zip(&got) {
            assert_eq!(*y, x.tanh(), "squash({x})");
        }
        assert_eq!((-SQUASH_CLAMP).tanh(), -1.0);
    }
}
