//! A plain multi-layer perceptron `[batch, d_in] → [batch, d_out]`.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::{gelu, relu, tanh};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::rng::{self, Rng};

/// Hidden-layer non-linearity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Relu,
    Gelu,
    Tanh,
}

impl Activation {
    fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Relu => relu(x),
            Self::Gelu => gelu(x),
            Self::Tanh => tanh(x),
        }
    }
}

/// Shape and init of an [`Mlp`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    pub d_in: usize,
    /// Widths of the hidden layers, e.g. `[64, 64]`.
    pub hidden: Vec<usize>,
    pub d_out: usize,
    pub activation: Activation,
}

impl MlpConfig {
    /// Build the network. Weights ~ U(-1/√fan_in, 1/√fan_in) (PyTorch's default), biases zero,
    /// drawn from `rng` in layer order.
    pub fn init(&self, device: &Device, rng: &mut Rng) -> Mlp {
        let mut dims = vec![self.d_in];
        dims.extend(&self.hidden);
        dims.push(self.d_out);
        let layers = dims
            .windows(2)
            .map(|w| linear(w[0], w[1], device, rng))
            .collect();
        Mlp {
            layers,
            activation: self.activation,
        }
    }
}

/// A linear layer `[d_in] → [d_out]` with seeded uniform weights and zero bias.
pub fn linear(d_in: usize, d_out: usize, device: &Device, rng: &mut Rng) -> Linear {
    let bound = 1.0 / (d_in as f32).sqrt();
    let w: Vec<f32> = (0..d_in * d_out)
        .map(|_| rng::uniform(rng, -bound, bound))
        .collect();
    linear_from(w, d_in, d_out, true, device)
}

/// A linear layer `[d_in] → [d_out]` with the given weights (`[d_in * d_out]`, row-major) and,
/// when `bias`, a zero bias. Every network in the crate builds its layers through this.
pub fn linear_from(w: Vec<f32>, d_in: usize, d_out: usize, bias: bool, device: &Device) -> Linear {
    Linear {
        weight: Param::from_data(TensorData::new(w, [d_in, d_out]), device),
        bias: bias.then(|| Param::from_data(TensorData::new(vec![0.0f32; d_out], [d_out]), device)),
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub layers: Vec<Linear>,
    #[module(skip)]
    pub activation: Activation,
}

impl Mlp {
    /// `x: [batch, d_in]` → `[batch, d_out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = self.activation.apply(h);
            }
        }
        h
    }
}
