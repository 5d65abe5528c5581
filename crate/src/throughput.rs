//! Throughput of the RFM agent on any backend: the figures of `rfm bench` (critic + actor
//! updates/s, action selections/s, estimator targets/s), built from the same public pieces so
//! the browser can measure them too (the page's `?bench` mode calls [`run`] through the wasm
//! export `runBench`, on flex and on WebGPU).
//!
//! - updates/s: [`Trainer::step`] with warm-up off and the replay buffer pre-filled with random
//!   transitions of the env's shapes, so every step is one full update plus one exploring action;
//! - actions/s: greedy action selections one at a time (candidates × ODE steps + argmax Q, what
//!   [`Trainer::evaluate`] does per env step; `rfm bench` times whole 200-step episodes);
//! - estimator targets/s: the posterior pipeline alone ([`crate::rfm::posterior`]: candidate
//!   draws, tanh-latent Boltzmann density from given Q / ∇Q, the config's estimator, the
//!   regression target), K candidates per state, on the CPU;
//! - products: the host nets' matrix product alone ([`crate::nets::host::dense::matmul`], one
//!   thread, as the nets call it on each row block) at the sampler's hidden-layer shape,
//!   `[batch·candidates, hidden]·[hidden, hidden]`, in GFLOP/s (2·m·k·n per product): the
//!   arithmetic peak that every CPU figure above is built on, natively (the `gemm` crate) and in
//!   wasm (`wasm_gemm`'s SIMD128 / relaxed-SIMD kernels).
//!
//! Each figure runs for about `seconds` (at least one iteration), so a slow backend still
//! returns in bounded time; it is reported with the number of items it timed.

use serde::Serialize;

use crate::device::ComputeDevice;
use crate::envs::{EnvName, make_env};
use crate::rfm::posterior::{PosteriorSpec, posterior_targets, ready};
use crate::rfm::targets::boltzmann_latent_log_prob_grad;
use crate::rng;
use crate::sampler::SamplerTrainer;
use crate::session::Inner;
use crate::session::seeds::{Seeds, seed_spec};
use crate::spec::resolve::{sampler_config, train_config};
use crate::spec::{ExperimentSpec, Mode};
use crate::trainer::rfm::{RfmAgent, regression};
use crate::trainer::{Agent, TrainConfig, Trainer};

/// One measurement: items per second over `seconds`, from `items` items.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    pub per_s: f64,
    pub items: usize,
    pub seconds: f64,
}

/// Matrix products per second at one shape, `[m, k]·[k, n]`, and the arithmetic rate they make.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductRate {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// Products per second.
    pub per_s: f64,
    pub items: usize,
    pub seconds: f64,
    /// `per_s · 2·m·k·n / 1e9`.
    pub gflop_per_s: f64,
}

/// The figures for one config on one device.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    /// `playground` or `released`.
    pub config: String,
    pub backend: String,
    pub adapter: String,
    pub env: String,
    pub batch: usize,
    pub k: usize,
    pub candidates: usize,
    pub ode_steps: usize,
    pub hidden: usize,
    /// Agents stepped together for `updates` (as the session steps an experiment's seeds);
    /// `updates` is per agent.
    pub seeds: usize,
    pub updates: Option<Rate>,
    pub actions: Option<Rate>,
    pub estimator_targets: Option<Rate>,
    /// The host matrix product at the sampler's hidden-layer shape (see the module docs).
    pub products: Option<ProductRate>,
    /// Figures that could not be measured, as `"updates: <why>"` (the others still are).
    pub errors: Vec<String>,
}

/// Milliseconds on a monotonic-enough clock (the browser has no `Instant`).
fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        use std::time::Instant;
        static T0: OnceLock<Instant> = OnceLock::new();
        T0.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3
    }
}

/// Wall time since a measurement started.
struct Clock(f64);

impl Clock {
    fn start() -> Self {
        Self(now_ms())
    }

    /// The rate of `items` once at least `seconds` have passed, else `None` (keep going).
    fn rate_once(&self, items: usize, seconds: f64) -> Option<Rate> {
        let el = (now_ms() - self.0) / 1e3;
        (el >= seconds).then(|| Rate {
            per_s: items as f64 / el.max(1e-6),
            items,
            seconds: el,
        })
    }
}

/// A trainer whose every `step()` is an update (see the module docs): warm-up off, replay
/// pre-filled with `max(4·batch, 1000)` random transitions of the env's shapes.
pub fn ready_trainer(
    cfg: &TrainConfig,
    env: EnvName,
    device: ComputeDevice,
) -> Result<Trainer, String> {
    let rfm = TrainConfig {
        agent: Agent::Rfm,
        ..cfg.clone()
    };
    prefilled_trainer(&rfm, env, device)
}

/// [`ready_trainer`] for `cfg`'s own agent.
fn prefilled_trainer(
    cfg: &TrainConfig,
    env: EnvName,
    device: ComputeDevice,
) -> Result<Trainer, String> {
    let cfg = TrainConfig {
        warmup_steps: 0,
        ..cfg.clone()
    };
    let fill = (4 * cfg.batch_size).max(1000).min(cfg.replay_capacity);
    let mut trainer =
        Trainer::new(cfg.clone(), make_env(env, cfg.seed), device).map_err(|e| e.to_string())?;
    let mut r = rng::seeded(cfg.seed ^ 0xBE7C);
    let spec = make_env(env, cfg.seed).spec().clone();
    let (o, d) = (spec.obs_dim, spec.act_dim);
    for _ in 0..fill {
        let obs = rng::normals(&mut r, o);
        let next = rng::normals(&mut r, o);
        let act: Vec<f32> = (0..d).map(|_| rng::uniform(&mut r, -1.0, 1.0)).collect();
        let rew = rng::normal(&mut r);
        trainer.replay_mut().push(&obs, &act, rew, &next, false);
    }
    Ok(trainer)
}

/// The posterior pipeline at one update's shapes (`n = batch`, `K`, `d`) on random Q / ∇Q
/// (the numerics do not depend on where they come from); targets per second over about
/// `seconds`.
fn estimator_rate(cfg: &TrainConfig, d: usize, seconds: f64) -> Result<Rate, String> {
    let (n, k) = (cfg.batch_size, cfg.posterior_samples);
    let r = &mut rng::seeded(cfg.seed);
    let t: Vec<f32> = (0..n).map(|_| rng::uniform(r, 0.01, 0.99)).collect();
    let xt = rng::normals(r, n * d);
    let q: Vec<f32> = rng::normals(r, n * k).iter().map(|v| 0.1 * v).collect();
    let gq = rng::normals(r, n * k * d);
    let path = cfg.param.path();
    let spec = PosteriorSpec {
        path: &path,
        proposal: &cfg.proposal,
        estimators: std::slice::from_ref(&cfg.estimator),
        k,
        regression: regression(cfg.param),
    };
    let clock = Clock::start();
    let mut items = 0;
    loop {
        let density = async |x1: &[f32]| {
            let (mut logp1, mut grad) = (vec![0.0f32; n * k], vec![0.0f32; n * k * d]);
            boltzmann_latent_log_prob_grad(&q, &gq, x1, cfg.lambda, &mut logp1, &mut grad)?;
            Ok::<_, crate::rfm::TargetError>((logp1, grad))
        };
        let v =
            ready(posterior_targets(&spec, &xt, &t, d, r, density)).map_err(|e| e.to_string())?;
        std::hint::black_box(v);
        items += n;
        if let Some(rate) = clock.rate_once(items, seconds) {
            return Ok(rate);
        }
    }
}

/// The host matrix product at the sampler's hidden-layer shape, one thread (module docs).
async fn products_rate(cfg: &TrainConfig, seconds: f64) -> ProductRate {
    let (m, k, n) = (
        cfg.batch_size * cfg.candidates,
        cfg.actor_hidden,
        cfg.actor_hidden,
    );
    let r = &mut rng::seeded(cfg.seed);
    let (x, w) = (rng::normals(r, m * k), rng::normals(r, k * n));
    let mut out = vec![0.0f32; m * n];
    let rate = timed(seconds, async || {
        crate::nets::host::dense::matmul(&x, &w, &mut out, k, n, false);
        std::hint::black_box(&mut out);
        Ok(())
    })
    .await
    .expect("a product cannot fail");
    let flop = 2.0 * (m * k * n) as f64;
    ProductRate {
        m,
        k,
        n,
        per_s: rate.per_s,
        items: rate.items,
        seconds: rate.seconds,
        gflop_per_s: rate.per_s * flop / 1e9,
    }
}

/// Full updates per agent per second with `seeds` agents stepped together as the session
/// steps an experiment's seeds ([`Seeds::step`]; one untimed round first: it builds the kernels
/// / pipelines). `items` counts every agent's updates.
async fn updates_rate(
    cfg: &TrainConfig,
    env: EnvName,
    device: ComputeDevice,
    seconds: f64,
    seeds: usize,
) -> Result<Rate, String> {
    let agents = (0..seeds.max(1))
        .map(|i| {
            let cfg = TrainConfig {
                seed: cfg.seed.wrapping_add(i as u64),
                ..cfg.clone()
            };
            ready_trainer(&cfg, env, device.clone()).map(|t| Inner::Rl(Box::new(t)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    seeds_rate(Seeds::from_trainers(agents), seconds).await
}

/// Rounds of [`Seeds::step`] for about `seconds`, as updates per agent per second.
async fn seeds_rate(mut seeds: Seeds, seconds: f64) -> Result<Rate, String> {
    let n = seeds.len();
    let round = timed(seconds, async || {
        for r in seeds.step().await {
            r.map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .await?;
    Ok(Rate {
        per_s: round.per_s * n as f64,
        items: round.items * n,
        seconds: round.seconds,
    })
}

/// Updates per second per seed of `spec`'s own experiment (its mode, agent, sizes, env and
/// seeds, stepped together as the session steps them) on `device`, over about `seconds` after
/// one untimed round (which builds the kernels / pipelines): what the page's `auto` compares
/// the CPU and WebGPU by on a hardware adapter.
pub async fn calibrate(
    spec: &ExperimentSpec,
    device: ComputeDevice,
    seconds: f64,
) -> Result<Rate, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let agents = (0..spec.seeds.max(1))
        .map(|i| {
            let spec = seed_spec(spec, i);
            Ok(match spec.mode {
                Mode::Rl => Inner::Rl(Box::new(prefilled_trainer(
                    &train_config(&spec),
                    spec.env,
                    device.clone(),
                )?)),
                Mode::Sampler => Inner::Sampler(Box::new(
                    SamplerTrainer::new(sampler_config(&spec), device.clone())
                        .map_err(|e| err(&e))?,
                )),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    seeds_rate(Seeds::from_trainers(agents), seconds).await
}

/// One untimed `step` (it builds the kernels / pipelines), then steps for about `seconds`.
async fn timed(
    seconds: f64,
    mut step: impl AsyncFnMut() -> Result<(), String>,
) -> Result<Rate, String> {
    step().await?;
    let clock = Clock::start();
    for items in 1.. {
        step().await?;
        if let Some(rate) = clock.rate_once(items, seconds) {
            return Ok(rate);
        }
    }
    unreachable!("the loop returns")
}

/// Greedy action selections per second (what [`Trainer::evaluate`] does per env step:
/// candidates × ODE steps + argmax Q), one at a time along the env's own trajectory.
async fn actions_rate(
    cfg: &TrainConfig,
    env: EnvName,
    device: ComputeDevice,
    seconds: f64,
) -> Result<Rate, String> {
    let mut env = make_env(env, cfg.seed);
    let spec = env.spec().clone();
    let mut r = rng::seeded(cfg.seed ^ 0xAC7);
    let mut agent = RfmAgent::new(cfg, spec.obs_dim, spec.act_dim, &device, &mut r);
    let mut obs = env.reset(Some(cfg.seed));
    // One untimed action: builds the kernels / pipelines and the host copies.
    agent
        .act(&obs, false, &mut r)
        .await
        .map_err(|e| e.to_string())?;
    let clock = Clock::start();
    let mut items = 0;
    loop {
        let a = agent
            .act(&obs, false, &mut r)
            .await
            .map_err(|e| e.to_string())?;
        let res = env.step(&a);
        obs = if res.terminated || res.truncated {
            env.reset(None)
        } else {
            res.obs
        };
        items += 1;
        if let Some(rate) = clock.rate_once(items, seconds) {
            return Ok(rate);
        }
    }
}

/// What [`run`] can measure.
pub const MEASURES: [&str; 4] = ["updates", "actions", "estimator", "products"];

/// Measure `which` (any of `updates`, `actions`, `estimator`, `products`) for `cfg` on `device`,
/// on the shapes of `env`, updates with `seeds` agents stepped together (per agent). A figure
/// that fails is listed in `errors` and the others are still measured.
pub async fn run(
    name: &str,
    cfg: &TrainConfig,
    device: ComputeDevice,
    env: EnvName,
    seconds: f64,
    which: &[&str],
    seeds: usize,
) -> Result<Throughput, String> {
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err("seconds must be a finite number ≥ 0".into());
    }
    if !(1..=crate::spec::fields::MAX_SEEDS).contains(&seeds) {
        return Err(format!(
            "seeds must be 1 to {}",
            crate::spec::fields::MAX_SEEDS
        ));
    }
    let spec = make_env(env, cfg.seed).spec().clone();
    let mut out = Throughput {
        config: name.to_string(),
        backend: device.kind().to_string(),
        adapter: device.info().adapter.clone(),
        env: env.to_string(),
        batch: cfg.batch_size,
        k: cfg.posterior_samples,
        candidates: cfg.candidates,
        ode_steps: cfg.ode_steps,
        hidden: cfg.actor_hidden,
        seeds,
        updates: None,
        actions: None,
        estimator_targets: None,
        products: None,
        errors: Vec::new(),
    };
    if which.contains(&"updates") {
        match updates_rate(cfg, env, device.clone(), seconds, seeds).await {
            Ok(r) => out.updates = Some(r),
            Err(e) => out.errors.push(format!("updates: {e}")),
        }
    }
    if which.contains(&"actions") {
        match actions_rate(cfg, env, device, seconds).await {
            Ok(r) => out.actions = Some(r),
            Err(e) => out.errors.push(format!("actions: {e}")),
        }
    }
    if which.contains(&"estimator") {
        match estimator_rate(cfg, spec.act_dim, seconds) {
            Ok(r) => out.estimator_targets = Some(r),
            Err(e) => out.errors.push(format!("estimator: {e}")),
        }
    }
    if which.contains(&"products") {
        out.products = Some(products_rate(cfg, seconds).await);
    }
    if let Some(unknown) = which.iter().find(|w| !MEASURES.contains(w)) {
        out.errors.push(format!(
            "{unknown}: not a measurement (expected {})",
            MEASURES.join(", ")
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `which` of `cfg` on the CPU, pendulum shapes, one iteration each.
    fn measure(cfg: &TrainConfig, which: &[&str]) -> Throughput {
        pollster::block_on(run(
            "playground",
            cfg,
            ComputeDevice::cpu(),
            EnvName::Pendulum,
            0.0,
            which,
            1,
        ))
        .unwrap()
    }

    #[test]
    fn every_figure_is_measured_and_positive() {
        let cfg = TrainConfig {
            batch_size: 16,
            posterior_samples: 4,
            candidates: 2,
            ode_steps: 2,
            ..TrainConfig::playground()
        };
        let r = measure(&cfg, &MEASURES);
        assert_eq!(r.backend, "cpu");
        for rate in [&r.updates, &r.actions, &r.estimator_targets] {
            let rate = rate.as_ref().expect("measured");
            assert!(rate.per_s > 0.0 && rate.items > 0, "{rate:?}");
        }
        // The product's shape is the sampler's hidden layer; GFLOP/s is 2·m·k·n per product.
        let p = r.products.as_ref().expect("measured");
        assert_eq!((p.m, p.k, p.n), (32, cfg.actor_hidden, cfg.actor_hidden));
        let flop = 2.0 * (p.m * p.k * p.n) as f64;
        assert!(
            p.items > 0 && (p.gflop_per_s - p.per_s * flop / 1e9).abs() < 1e-9,
            "{p:?}"
        );
        assert_eq!(r.errors, Vec::<String>::new());
    }

    #[test]
    fn an_unknown_measurement_is_named_and_the_others_still_run() {
        let cfg = TrainConfig {
            batch_size: 8,
            candidates: 2,
            ..TrainConfig::playground()
        };
        let r = measure(&cfg, &["products", "flops"]);
        assert!(r.products.is_some());
        assert_eq!(r.errors.len(), 1);
        assert!(
            r.errors[0].starts_with("flops: not a measurement"),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn calibration_measures_the_spec_s_own_experiment_in_both_modes_and_for_sac() {
        use crate::trainer::Agent;
        let small = |mode| ExperimentSpec {
            batch: 16,
            k: 4,
            candidates: 2,
            ode_steps: 2,
            ..ExperimentSpec::defaults(mode)
        };
        let sac = ExperimentSpec {
            agent: Agent::Sac,
            ..small(Mode::Rl)
        };
        for spec in [small(Mode::Rl), small(Mode::Sampler), sac] {
            let r = pollster::block_on(calibrate(&spec, ComputeDevice::cpu(), 0.0)).unwrap();
            assert!(
                r.per_s > 0.0 && r.items == 1,
                "{:?} {:?}: {r:?}",
                spec.mode,
                spec.agent
            );
        }
    }
}
