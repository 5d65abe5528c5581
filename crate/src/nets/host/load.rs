//! burn glue: host copies of the burn modules' weights, read back asynchronously (safe on every
//! backend; no synchronous reads), and burn modules built from host weights.

use burn::nn::Linear;

use super::critic::HostCritic;
use super::dense::Dense;
use super::policy::HostPolicy;
use crate::device::{DeviceError, read_f32};
use crate::nets::Policy;
use crate::nets::critic::{Critic, CriticConfig, QHead};
use crate::nets::mlp::linear_from;
use burn::module::Param;
use burn::tensor::{Device, TensorData};

async fn dense(layer: &Linear) -> Result<Dense, DeviceError> {
    let [d_in, d_out] = layer.weight.val().dims();
    let w = read_f32(layer.weight.val()).await?;
    let b = match &layer.bias {
        Some(b) => Some(read_f32(b.val()).await?),
        None => None,
    };
    Ok(Dense::new(w, b, d_in, d_out))
}

/// The weights of `policy` (on any device, autodiff or not).
pub async fn policy(policy: &Policy) -> Result<HostPolicy, DeviceError> {
    let mut blocks = Vec::with_capacity(policy.blocks.len());
    for b in &policy.blocks {
        blocks.push(dense(b).await?);
    }
    Ok(HostPolicy::new(
        policy.config.clone(),
        dense(&policy.input).await?,
        dense(&policy.input_cond).await?,
        blocks,
        dense(&policy.output).await?,
    ))
}

async fn head(head: &QHead) -> Result<Vec<Dense>, DeviceError> {
    let mut layers = Vec::with_capacity(head.layers.len());
    for l in &head.layers {
        layers.push(dense(l).await?);
    }
    Ok(layers)
}

/// The weights of both heads of `critic` (on any device, autodiff or not).
pub async fn critic(critic: &Critic) -> Result<HostCritic, DeviceError> {
    let c = critic.config();
    Ok(HostCritic::new(
        c.obs_dim,
        c.act_dim,
        [head(&critic.q1).await?, head(&critic.q2).await?],
    ))
}

/// A burn `Linear` on `device` with `d`'s weights (and its bias when `bias`).
fn linear(d: &Dense, bias: bool, device: &Device) -> Linear {
    let mut l = linear_from(d.w.clone(), d.d_in, d.d_out, false, device);
    if bias {
        l.bias = Some(Param::from_data(
            TensorData::new(d.b.clone(), [d.d_out]),
            device,
        ));
    }
    l
}

/// A burn [`Policy`] on `device` with `p`'s weights (the conditioning block has no bias).
pub fn policy_module(p: &HostPolicy, device: &Device) -> Policy {
    Policy {
        input: linear(&p.input, true, device),
        input_cond: linear(&p.input_cond, false, device),
        blocks: p.blocks.iter().map(|b| linear(b, true, device)).collect(),
        output: linear(&p.output, true, device),
        config: p.config.clone(),
    }
}

/// A burn [`Critic`] of shape `cfg` on `device` with `c`'s weights.
pub fn critic_module(c: &HostCritic, cfg: &CriticConfig, device: &Device) -> Critic {
    let head = |layers: &[Dense]| QHead {
        layers: layers.iter().map(|l| linear(l, true, device)).collect(),
    };
    Critic {
        q1: head(&c.heads[0]),
        q2: head(&c.heads[1]),
        config: cfg.clone(),
    }
}
