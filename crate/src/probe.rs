//! The pipeline probe: a small MLP fitted to `y = sin(2x)` with autodiff + Adam for a few
//! steps. It is the smallest real computation that exercises every stage (burn module,
//! backward pass, optimiser, async readback) on every backend, natively, in wasm tests and in
//! the page's worker.

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::device::{ComputeDevice, DeviceError, DeviceInfo, read_scalar};
use crate::nets::{Activation, MlpConfig};
use crate::rng;

/// Probe settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default, rename_all = "camelCase")]
pub struct ProbeConfig {
    /// Adam steps to take (1..=10_000).
    pub steps: usize,
    /// Hidden width of the 2-layer MLP (1..=1024).
    pub hidden: usize,
    /// Number of regression points on [-π/2, π/2] (2..=4096).
    pub points: usize,
    /// Adam learning rate (0, 1].
    pub lr: f64,
    pub seed: u64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            steps: 50,
            hidden: 32,
            points: 64,
            lr: 1e-2,
            seed: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("probe config: {field} = {value} is out of range ({range})")]
    Config {
        field: &'static str,
        value: String,
        range: &'static str,
    },
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("loss became {value} at step {step}")]
    NonFinite { step: usize, value: f32 },
}

impl ProbeConfig {
    pub fn validate(&self) -> Result<(), ProbeError> {
        let bad = |field, value: String, range| {
            Err(ProbeError::Config {
                field,
                value,
                range,
            })
        };
        if !(1..=10_000).contains(&self.steps) {
            return bad("steps", self.steps.to_string(), "1..=10000");
        }
        if !(1..=1024).contains(&self.hidden) {
            return bad("hidden", self.hidden.to_string(), "1..=1024");
        }
        if !(2..=4096).contains(&self.points) {
            return bad("points", self.points.to_string(), "2..=4096");
        }
        if !(self.lr > 0.0 && self.lr <= 1.0) {
            return bad("lr", self.lr.to_string(), "(0, 1]");
        }
        Ok(())
    }
}

/// What the probe measured.
#[derive(Clone, Debug, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct ProbeReport {
    pub device: DeviceInfo,
    /// Mean-squared error before each step (`steps` entries).
    pub losses: Vec<f32>,
    pub initial_loss: f32,
    pub final_loss: f32,
}

/// Train the probe on `device` and report the loss curve.
pub async fn run_probe(
    device: &ComputeDevice,
    cfg: &ProbeConfig,
) -> Result<ProbeReport, ProbeError> {
    cfg.validate()?;
    let dev = device.autodiff();
    let mut rng = rng::seeded(cfg.seed);
    let mut model = MlpConfig {
        d_in: 1,
        hidden: vec![cfg.hidden, cfg.hidden],
        d_out: 1,
        activation: Activation::Tanh,
    }
    .init(&dev, &mut rng);
    let n = cfg.points;
    let xs: Vec<f32> = (0..n)
        .map(|i| -std::f32::consts::FRAC_PI_2 + std::f32::consts::PI * i as f32 / (n - 1) as f32)
        .collect();
    let ys: Vec<f32> = xs.iter().map(|x| (2.0 * x).sin()).collect();
    let x = Tensor::<2>::from_data(TensorData::new(xs, [n, 1]), &dev);
    let y = Tensor::<2>::from_data(TensorData::new(ys, [n, 1]), &dev);
    let mut optim = AdamConfig::new().init();
    let mut losses = Vec::with_capacity(cfg.steps);
    for step in 0..cfg.steps {
        let pred = model.forward(x.clone());
        let loss = (pred - y.clone()).powf_scalar(2.0).mean();
        let value = read_scalar(loss.clone().detach()).await?;
        if !value.is_finite() {
            return Err(ProbeError::NonFinite { step, value });
        }
        losses.push(value);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(cfg.lr, model, grads);
    }
    Ok(ProbeReport {
        device: device.info().clone(),
        initial_loss: losses[0],
        final_loss: *losses.last().unwrap(),
        losses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_falls_on_flex() {
        let d = ComputeDevice::cpu();
        let r = pollster::block_on(run_probe(&d, &ProbeConfig::default())).unwrap();
        assert_eq!(r.losses.len(), 50);
        // sin(2x) on [-π/2, π/2] has variance 0.5: an untrained net starts near it.
        assert!(r.initial_loss > 0.2, "initial {}", r.initial_loss);
        assert!(
            r.final_loss < 0.25 * r.initial_loss,
            "{} → {}",
            r.initial_loss,
            r.final_loss
        );
    }

    #[test]
    fn same_seed_same_curve() {
        let d = ComputeDevice::cpu();
        let cfg = ProbeConfig {
            steps: 10,
            ..Default::default()
        };
        let a = pollster::block_on(run_probe(&d, &cfg)).unwrap();
        let b = pollster::block_on(run_probe(&d, &cfg)).unwrap();
        assert_eq!(a.losses, b.losses);
    }

    #[test]
    fn bad_config_names_the_field() {
        let cfg = ProbeConfig {
            lr: 0.0,
            ..Default::default()
        };
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("lr") && e.contains("(0, 1]"), "{e}");
    }
}
