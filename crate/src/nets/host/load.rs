//! burn glue: host copies of the burn modules' weights, read back asynchronously (safe on every
//! backend; no synchronous reads).

use burn::nn::Linear;

use super::critic::HostCritic;
use super::dense::Dense;
use super::policy::HostPolicy;
use crate::device::{DeviceError, read_f32};
use crate::nets::Policy;
use crate::nets::critic::{Critic, QHead};

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
