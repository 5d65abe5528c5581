//! The views the page draws, all read-only (own RNG streams; nothing here changes the run):
//! the policy's density beside its target with their KL (one definition:
//! [`metrics::kl_to_histogram`]), the flow's sample paths, and the estimator variance vs t.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use burn::tensor::{Tensor, TensorData};

use super::{Inner, Session, SessionError};
use crate::metrics::{self, Grid2d, VarianceConfig, kl_to_histogram, kl_uniform, masses_from_log};
use crate::nets::OdeConfig;
use crate::nets::Parameterisation;
use crate::nets::policy::paths_to_host;
use crate::rfm::boltzmann::boltzmann_latent_log_prob_grad;
use crate::rfm::estimators::Estimator;
use crate::rfm::posterior::{PosteriorError, PosteriorSpec, Regression, posterior_targets};
use crate::rfm::targets::{LogDensity, Target};
use crate::rng;
use crate::spec::ExperimentSpec;
use crate::spec::resolve::train_config;
use crate::trainer::Trainer;

/// Histogram cells of the 1-D density views.
pub const GRID_1D: usize = 61;
/// Histogram cells per axis of the 2-D density views.
pub const GRID_2D: usize = 40;
/// Samples histogrammed for a density view, unless the query says otherwise.
pub const DENSITY_SAMPLES: usize = 4000;

/// One axis of a grid.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct Axis {
    pub min: f32,
    pub max: f32,
    pub n: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct GridSpec {
    pub dims: usize,
    pub x: Axis,
    /// Present when `dims` = 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub y: Option<Axis>,
}

/// Policy density beside its target on a grid: masses per cell, each summing to 1, row-major
/// with x fastest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DensityView {
    pub grid: GridSpec,
    pub policy: Vec<f32>,
    pub target: Vec<f32>,
    /// KL(target ‖ policy) on the grid, nats (policy histogram smoothed by a pseudo-count).
    pub kl: f32,
    /// KL(target ‖ uniform) on the same grid: what a policy that knows nothing would score
    /// against this target. In RL the target sharpens as the critic learns, so this, not the
    /// first KL, is the yardstick for how much of the target the policy has picked up.
    pub kl_uniform: f32,
    /// The env state it was computed at (RL), or null (sampler).
    pub state: Option<Vec<f64>>,
    /// The seed it shows (index; 0 is the spec's own seed), or null when it pools every seed.
    pub seed_index: Option<usize>,
    /// Pooled views: each seed's own KL(target ‖ policy), in seed order; else empty.
    pub kl_by_seed: Vec<f32>,
}

/// Flow paths from noise (t = 0) to sample (t = 1): `paths[i][j]` is path i at `t[j]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FlowPaths {
    pub t: Vec<f32>,
    pub paths: Vec<Vec<Vec<f32>>>,
}

/// Estimator variance vs t, per estimator name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct VarianceCurve {
    pub t: Vec<f32>,
    pub by_estimator: std::collections::BTreeMap<String, Vec<f32>>,
}

/// Pseudo-count added to every histogram cell before the KL.
const PSEUDO_COUNT: f32 = 0.5;

/// Which of an experiment's seeds a density view shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SeedView {
    /// Seed index `i` (0: the spec's own seed).
    One(usize),
    /// Every seed pooled: the mean of their policy histograms beside the mean of their targets,
    /// each seed's own KL listed.
    #[default]
    All,
}

/// One seed's density on its grid, before it becomes a [`DensityView`].
struct SeedDensity {
    grid: GridSpec,
    /// Target masses (sum 1).
    target: Vec<f32>,
    /// Policy sample counts per cell (sum `n`).
    counts: Vec<f32>,
    n: usize,
    state: Option<Vec<f64>>,
}

impl SeedDensity {
    fn view(self, seed_index: Option<usize>, kl_by_seed: Vec<f32>) -> DensityView {
        let kl = kl_to_histogram(&self.target, &self.counts, PSEUDO_COUNT);
        let n = self.n as f32;
        DensityView {
            grid: self.grid,
            policy: self.counts.iter().map(|&c| c / n).collect(),
            kl_uniform: kl_uniform(&self.target),
            target: self.target,
            kl,
            state: self.state,
            seed_index,
            kl_by_seed,
        }
    }
}

impl Session {
    /// The policy's density beside its target, of seed 0 (see [`Session::density_of`]).
    pub async fn density(
        &self,
        samples: Option<usize>,
        state: Option<Vec<f64>>,
    ) -> Result<DensityView, SessionError> {
        self.density_of(samples, state, SeedView::One(0)).await
    }

    /// The policy's density beside its target, of one seed or of all of them pooled. RL: at
    /// `state` or, without one, at seed 0's current state (every seed at the same state).
    pub async fn density_of(
        &self,
        samples: Option<usize>,
        state: Option<Vec<f64>>,
        seeds: SeedView,
    ) -> Result<DensityView, SessionError> {
        let n = samples.unwrap_or(DENSITY_SAMPLES).clamp(100, 100_000);
        let count = self.seed_count();
        match seeds {
            SeedView::One(i) => {
                let inner = self.seeds().get(i).ok_or_else(|| {
                    SessionError::Query(format!(
                        "there is no seed index {i}: this experiment trains {count}"
                    ))
                })?;
                let seed = super::seeds::seed_of(&self.cfg, i);
                Ok(self
                    .seed_density(inner, seed, n, state)
                    .await?
                    .view(Some(i), Vec::new()))
            }
            SeedView::All => {
                let state = match self.inner() {
                    Inner::Rl(t) => Some(state.unwrap_or_else(|| t.env_state())),
                    Inner::Sampler(_) => None,
                };
                let mut pooled: Option<SeedDensity> = None;
                let mut kls = Vec::with_capacity(count);
                for (i, inner) in self.seeds().iter().enumerate() {
                    let seed = super::seeds::seed_of(&self.cfg, i);
                    let d = self.seed_density(inner, seed, n, state.clone()).await?;
                    kls.push(kl_to_histogram(&d.target, &d.counts, PSEUDO_COUNT));
                    match pooled.as_mut() {
                        None => pooled = Some(d),
                        Some(p) => {
                            p.n += d.n;
                            p.counts
                                .iter_mut()
                                .zip(&d.counts)
                                .for_each(|(a, b)| *a += b);
                            p.target
                                .iter_mut()
                                .zip(&d.target)
                                .for_each(|(a, b)| *a += b);
                        }
                    }
                }
                let mut p = pooled.expect("at least one seed");
                p.target.iter_mut().for_each(|v| *v /= count as f32);
                Ok(p.view(None, kls))
            }
        }
    }

    /// `n` policy samples of one seed's trainer histogrammed beside its target.
    async fn seed_density(
        &self,
        inner: &Inner,
        seed: u64,
        n: usize,
        state: Option<Vec<f64>>,
    ) -> Result<SeedDensity, SessionError> {
        match inner {
            Inner::Sampler(t) => {
                let target = self.cfg.target.target();
                let (lo, hi) = target.bounds();
                let grid = Grid2d::square(lo, hi, GRID_2D);
                let xs = t.sample(n).await?;
                let axis = Axis {
                    min: lo,
                    max: hi,
                    n: GRID_2D,
                };
                Ok(SeedDensity {
                    grid: GridSpec {
                        dims: 2,
                        x: axis,
                        y: Some(axis),
                    },
                    target: target_masses(&target, &grid, self.cfg.lambda),
                    counts: metrics::grid_histogram(&xs, &grid),
                    n,
                    state: None,
                })
            }
            Inner::Rl(t) => {
                let (state, obs) = probe_point(t, state)?;
                let d = t.act_dim();
                let bins = if d == 1 { GRID_1D } else { GRID_2D };
                let centres = action_grid(d, bins);
                let q = t.q_values(&obs, &centres).await?;
                let mut r = rng::seeded(seed ^ 0xde75_0000 ^ t.steps() as u64);
                let a = t.policy_samples(&obs, n, &mut r).await?;
                let axis = Axis {
                    min: -1.0,
                    max: 1.0,
                    n: bins,
                };
                Ok(SeedDensity {
                    grid: GridSpec {
                        dims: d,
                        x: axis,
                        y: (d == 2).then_some(axis),
                    },
                    target: masses_from_log(&q, 1.0 / self.cfg.lambda),
                    counts: action_histogram(&a, d, bins),
                    n,
                    state: Some(state),
                })
            }
        }
    }

    /// `count` flow paths from noise to sample.
    pub async fn paths(
        &self,
        count: usize,
        state: Option<Vec<f64>>,
    ) -> Result<FlowPaths, SessionError> {
        let count = count.clamp(1, 2000);
        match self.inner() {
            Inner::Sampler(t) => {
                let ode = OdeConfig {
                    solver: self.cfg.solver,
                    steps: self.cfg.ode_steps,
                    ..OdeConfig::default()
                };
                let mut r = rng::seeded(self.cfg.seed ^ 0x9a75_0000 ^ t.steps_done() as u64);
                let y0 = Tensor::<2>::from_data(
                    TensorData::new(rng::normals(&mut r, count * 2), [count, 2]),
                    self.device.device(),
                );
                let out = t.policy().sample(y0, None, self.cfg.lambda, &ode, true);
                let (ts, paths) = paths_to_host(out.path.unwrap_or_default(), &ode, false)
                    .await
                    .map_err(|e| SessionError::Query(e.to_string()))?;
                Ok(FlowPaths { t: ts, paths })
            }
            Inner::Rl(t) => {
                let (_, obs) = probe_point(t, state)?;
                let mut r = rng::seeded(self.cfg.seed ^ 0x9a75_0000 ^ t.steps() as u64);
                match t.flow_paths(&obs, count, &mut r).await? {
                    Some((ts, paths)) => Ok(FlowPaths { t: ts, paths }),
                    None => Err(SessionError::Query(
                        "SAC's Gaussian policy has no flow paths; choose the RFM agent".to_string(),
                    )),
                }
            }
        }
    }

    /// Trace variance of the velocity target vs t for the noise, gradient and optimal-CV
    /// estimators (and the chosen one), on points drawn from the path marginal.
    pub async fn variance(&self, state: Option<Vec<f64>>) -> Result<VarianceCurve, SessionError> {
        match self.inner() {
            Inner::Sampler(_) => {
                let target = self.cfg.target.target();
                let mut rng = rng::seeded(self.cfg.seed ^ 0x7a11_0000);
                let data = match target.sample(&mut rng, 256) {
                    Some(d) => d,
                    None => return Err(SessionError::Query("target has no exact sampler".into())),
                };
                let path = self.cfg.param.path();
                let vcfg = VarianceConfig {
                    ts: (1..=9).map(|i| i as f32 / 10.0).collect(),
                    n_points: 8,
                    k: self.cfg.k.max(2),
                    reps: 16,
                };
                let tempered = Tempered {
                    inner: &target,
                    lambda: self.cfg.lambda,
                };
                let mut by = std::collections::BTreeMap::new();
                for est in compared_estimators(&self.cfg) {
                    let mut r = rng::seeded(self.cfg.seed ^ 0x7a12_0000);
                    let bins = metrics::estimator_variance_by_t(
                        &path, &est, &tempered, &data, None, &vcfg, &mut r,
                    )?;
                    by.insert(est.name(), bins.iter().map(|b| b.variance).collect());
                }
                Ok(VarianceCurve {
                    t: vcfg.ts,
                    by_estimator: by,
                })
            }
            Inner::Rl(_) if self.cfg.agent == crate::spec::Agent::Sac => Err(SessionError::Query(
                "SAC has no posterior-mean estimator; choose the RFM agent".to_string(),
            )),
            Inner::Rl(t) => {
                let (_, obs) = probe_point(t, state)?;
                rl_variance(t, &obs, &self.cfg).await
            }
        }
    }
}

/// The env state a view looks at (the given one, else the run's current state) and its
/// observation.
fn probe_point(t: &Trainer, state: Option<Vec<f64>>) -> Result<(Vec<f64>, Vec<f32>), SessionError> {
    let state = state.unwrap_or_else(|| t.env_state());
    let obs = t
        .obs_for_state(&state)
        .map_err(|e| SessionError::Query(e.to_string()))?;
    Ok((state, obs))
}

/// The estimators the variance chart compares: noise, gradient and the paper's control variate,
/// plus the chosen one.
fn compared_estimators(cfg: &ExperimentSpec) -> Vec<Estimator> {
    let mut list: Vec<Estimator> = ["noise", "grad", "rfm"]
        .iter()
        .map(|n| Estimator::from_name(n).expect("built-in estimator names parse"))
        .collect();
    if !list.iter().any(|e| e.name() == cfg.estimator.name()) {
        list.push(cfg.estimator);
    }
    list
}

/// Variance of the regression target vs t at one observation, for the critic's Boltzmann
/// target in the tanh latent, on the spec's own path, proposal and parameterisation. All
/// candidates go through the one posterior pipeline ([`posterior_targets`]) in one batch (one
/// critic evaluation, read back asynchronously: safe on WebGPU), and every estimator runs on the
/// same candidates.
async fn rl_variance(
    t: &Trainer,
    obs: &[f32],
    cfg: &ExperimentSpec,
) -> Result<VarianceCurve, SessionError> {
    const POINTS: usize = 8;
    const REPS: usize = 12;
    let ts: Vec<f32> = (1..=9).map(|i| i as f32 / 10.0).collect();
    let d = t.act_dim();
    let k = cfg.k.max(2);
    let path = cfg.param.path();
    let mut r = rng::seeded(cfg.seed ^ 0x7a13_0000 ^ t.steps() as u64);
    // Data points: the policy's own latent samples (atanh of its actions).
    let acts = t.policy_samples(obs, POINTS, &mut r).await?;
    let y1: Vec<f32> = acts
        .iter()
        .map(|a| a.clamp(-0.999_999, 0.999_999).atanh())
        .collect();
    // Per t: POINTS points, each repeated REPS times (fresh candidates for each repeat).
    let n = POINTS * REPS;
    let (mut xt, mut tv) = (
        Vec::with_capacity(ts.len() * n * d),
        Vec::with_capacity(ts.len() * n),
    );
    for &tt in &ts {
        let c = path.coeffs(tt);
        for p in 0..POINTS {
            let noise = rng::normals(&mut r, d);
            let x: Vec<f32> = (0..d)
                .map(|j| c.alpha * y1[p * d + j] + c.beta * noise[j])
                .collect();
            for _ in 0..REPS {
                xt.extend_from_slice(&x);
                tv.push(tt);
            }
        }
    }
    let estimators = compared_estimators(cfg);
    let proposal = train_config(cfg).proposal;
    let spec = PosteriorSpec {
        path: &path,
        proposal: &proposal,
        estimators: &estimators,
        k,
        regression: match cfg.param {
            Parameterisation::Flow => Regression::Velocity,
            Parameterisation::Diffusion => Regression::Noise,
        },
    };
    let density = async |x1: &[f32]| {
        let actions: Vec<f32> = x1.iter().map(|u| u.tanh()).collect();
        let (q, gq) = t.q_and_grads(obs, &actions).await?;
        let (mut logp, mut grad) = (vec![0.0; q.len()], vec![0.0; gq.len()]);
        boltzmann_latent_log_prob_grad(&q, &gq, x1, cfg.lambda, &mut logp, &mut grad)
            .map_err(|e| SessionError::Query(e.to_string()))?;
        Ok::<_, SessionError>((logp, grad))
    };
    let targets = posterior_targets(&spec, &xt, &tv, d, &mut r, density)
        .await
        .map_err(|e| match e {
            PosteriorError::Density(e) => e,
            other => SessionError::Query(other.to_string()),
        })?;
    let mut by = std::collections::BTreeMap::new();
    for (est, target) in estimators.iter().zip(&targets) {
        let curve = target
            .target
            .chunks(n * d)
            .map(|block| trace_variance(block, POINTS, REPS, d))
            .collect();
        by.insert(est.name(), curve);
    }
    Ok(VarianceCurve {
        t: ts,
        by_estimator: by,
    })
}

/// Mean over points of the trace of the unbiased variance over repeats; `v` is
/// `[points * reps * d]` with each point's repeats contiguous.
pub fn trace_variance(v: &[f32], points: usize, reps: usize, d: usize) -> f32 {
    let mut total = 0.0f64;
    for p in 0..points {
        for j in 0..d {
            let xs: Vec<f64> = (0..reps)
                .map(|r| v[(p * reps + r) * d + j] as f64)
                .collect();
            let mean = xs.iter().sum::<f64>() / reps as f64;
            total += xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (reps - 1) as f64;
        }
    }
    (total / points as f64) as f32
}

/// Action-grid cell centres over `[-1, 1]^d` (`d` = 1 or 2), x fastest: `[bins^d * d]`.
pub fn action_grid(d: usize, bins: usize) -> Vec<f32> {
    let c = |i: usize| -1.0 + (i as f32 + 0.5) * 2.0 / bins as f32;
    if d == 1 {
        (0..bins).map(c).collect()
    } else {
        (0..bins * bins)
            .flat_map(|i| [c(i % bins), c(i / bins)])
            .collect()
    }
}

/// Counts of actions (`[n * d]`, d = 1 or 2) per cell of the `[-1, 1]^d` grid.
pub fn action_histogram(a: &[f32], d: usize, bins: usize) -> Vec<f32> {
    let cell =
        |x: f32| (((x + 1.0) * 0.5 * bins as f32) as isize).clamp(0, bins as isize - 1) as usize;
    let mut h = vec![0.0; if d == 1 { bins } else { bins * bins }];
    for p in a.chunks_exact(d) {
        if p.iter().any(|x| !x.is_finite()) {
            continue;
        }
        let i = if d == 1 {
            cell(p[0])
        } else {
            cell(p[1]) * bins + cell(p[0])
        };
        h[i] += 1.0;
    }
    h
}

/// `exp(log p / λ)`: the sampler's tempered target.
struct Tempered<'a> {
    inner: &'a Target,
    lambda: f32,
}

impl LogDensity for Tempered<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn log_prob_grad(&self, x: &[f32], logp: &mut [f32], grad: &mut [f32]) {
        self.inner.log_prob_grad(x, logp, grad);
        let s = 1.0 / self.lambda;
        logp.iter_mut().for_each(|v| *v *= s);
        grad.iter_mut().for_each(|v| *v *= s);
    }
}

/// Normalised masses of `exp(log p / λ)` at the cell centres of `grid`.
pub fn target_masses(target: &dyn LogDensity, grid: &Grid2d, lambda: f32) -> Vec<f32> {
    let c = grid.centres();
    let m = c.len() / 2;
    let mut logp = vec![0.0; m];
    let mut grad = vec![0.0; m * 2];
    target.log_prob_grad(&c, &mut logp, &mut grad);
    masses_from_log(&logp, 1.0 / lambda)
}
