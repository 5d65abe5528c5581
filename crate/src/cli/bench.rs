//! `rfm bench`: throughput of the RFM agent on the CPU backend, one JSON line per config.
//!
//! Everything is driven through the public API:
//! - `updates_per_s`: [`Trainer::step`] with warm-up switched off and the replay buffer
//!   pre-filled with random transitions of the env's shapes, so every step is one full RFM
//!   update (2 × batch × candidates × ODE-step sampling, TD target, critic step, K-sample
//!   posterior with ∇ₐQ, estimator, actor step, Polyak) plus one exploring action (1 state);
//! - `actions_per_s`: [`Trainer::evaluate`] (candidates × ODE steps + argmax Q per env step;
//!   the env step itself is negligible);
//! - `estimator_targets_per_s`: the posterior numerics alone (tanh-latent Boltzmann density
//!   from given Q / ∇Q, the estimator, the velocity target) per state, K candidates each.
//!
//! Each figure is the median of `--repeats` runs of about `--seconds` each. `--phases` adds a
//! per-update time breakdown from the public building blocks (see `Phases`).

use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use rfm_playground::device::{ComputeDevice, read_f32};
use rfm_playground::envs::{EnvName, make_env};
use rfm_playground::nets::critic::CriticConfig;
use rfm_playground::nets::host::actor::{ActorScratch, HostAdam};
use rfm_playground::nets::host::critic::CriticTrainScratch;
use rfm_playground::nets::host::{self, HostSampler};
use rfm_playground::nets::{OdeConfig, Parameterisation, PolicyConfig};
use rfm_playground::rfm::estimators::{
    Estimator, PosteriorBatch, draw_candidates, estimate, velocity_target,
};
use rfm_playground::rfm::path::Path;
use rfm_playground::rfm::targets::boltzmann_latent_log_prob_grad;
use rfm_playground::rng::{self, Rng};
use rfm_playground::throughput;
use rfm_playground::trainer::{Algo, TrainConfig, Trainer};
use serde_json::{Value, json};

use super::CliError;

/// `rfm bench --config both --seconds 3 --repeats 3`
#[derive(clap::Args)]
pub struct Args {
    /// Config: playground, released or both.
    #[arg(long, default_value = "both")]
    config: String,
    /// Seconds per measurement and repeat (at least one iteration always runs).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Repeats per measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Environment whose shapes are used: pendulum, mountain-car or multigoal.
    #[arg(long, default_value = "pendulum")]
    env: String,
    /// JSON object of config fields laid over the preset, e.g. '{"batchSize":512}'.
    #[arg(long)]
    overrides: Option<String>,
    /// Comma-separated measurements: updates, actions, estimator.
    #[arg(long, default_value = "updates,actions,estimator")]
    measure: String,
    /// Also time the update's building blocks separately (ms per update).
    #[arg(long)]
    phases: bool,
    /// Seed of the networks and the random transitions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Median of a non-empty list.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

/// Run `f` (which returns how many items it did) until `seconds` have passed; items per second.
fn rate(seconds: f64, mut f: impl FnMut() -> Result<usize, CliError>) -> Result<f64, CliError> {
    let start = Instant::now();
    let mut items = 0usize;
    loop {
        items += f()?;
        let el = start.elapsed().as_secs_f64();
        if el >= seconds {
            return Ok(items as f64 / el);
        }
    }
}

/// Median seconds per call of `f` over `reps` calls (after one untimed call).
fn time_median(reps: usize, mut f: impl FnMut() -> Result<(), CliError>) -> Result<f64, CliError> {
    f()?;
    let mut v = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        v.push(t.elapsed().as_secs_f64());
    }
    Ok(median(v))
}

fn tensor2(data: Vec<f32>, rows: usize, cols: usize, dev: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, [rows, cols]), dev)
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    pollster::block_on(f)
}

/// A trainer whose every `step()` is an update: warm-up off, replay pre-filled with random
/// transitions (uniform actions in [-1, 1], normal observations and rewards).
fn ready_trainer(cfg: &TrainConfig, env: EnvName) -> Result<Trainer, CliError> {
    Ok(throughput::ready_trainer(cfg, env, ComputeDevice::cpu())?)
}

/// Random posterior inputs of the update's shapes: `n = batch`, `K`, `d = act_dim`, with
/// Q / ∇Q drawn at random (the numerics do not depend on where they come from).
struct EstInputs {
    n: usize,
    k: usize,
    d: usize,
    t: Vec<f32>,
    xt: Vec<f32>,
    x0: Vec<f32>,
    x1: Vec<f32>,
    q: Vec<f32>,
    gq: Vec<f32>,
}

impl EstInputs {
    fn new(n: usize, k: usize, d: usize, r: &mut Rng) -> Self {
        let t: Vec<f32> = (0..n).map(|_| rng::uniform(r, 0.01, 0.99)).collect();
        let xt = rng::normals(r, n * d);
        let c = draw_candidates(&Path::Linear, &xt, &t, n, k, d, r);
        let q: Vec<f32> = rng::normals(r, n * k).iter().map(|v| 0.1 * v).collect();
        let gq = rng::normals(r, n * k * d);
        Self {
            n,
            k,
            d,
            t,
            xt,
            x0: c.x0,
            x1: c.x1,
            q,
            gq,
        }
    }

    /// Density + estimator + velocity target, as in the update; returns the target.
    fn run(&self, est: &Estimator, lambda: f32) -> Result<Vec<f32>, CliError> {
        let (n, k, d) = (self.n, self.k, self.d);
        let mut logp1 = vec![0.0f32; n * k];
        let mut grad = vec![0.0f32; n * k * d];
        boltzmann_latent_log_prob_grad(&self.q, &self.gq, &self.x1, lambda, &mut logp1, &mut grad)?;
        let pb = PosteriorBatch {
            n,
            k,
            d,
            xt: &self.xt,
            t: &self.t,
            x0: &self.x0,
            x1: &self.x1,
            logp1: &logp1,
            grad_logp1: &grad,
            log_iw: &[],
        };
        let e = estimate(&Path::Linear, est, &pb)?;
        Ok(velocity_target(
            &Path::Linear,
            &self.t,
            &e.mu0,
            &e.mu1,
            n,
            d,
        ))
    }
}

/// Milliseconds per update of the update's building blocks, each built from the public nets
/// API with the config's shapes (plain device unless it trains):
/// - `sample_ms`: the trainer's CPU candidate sampler (`nets::host`, incl. reading the weights
///   back) over `2·batch·candidates` rows + `min(Q1, Q2)` of the candidates;
/// - `td_ms`: `q_min` of the target critic on `batch` rows;
/// - `critic_step_ms`: the trainer's CPU critic step (`HostCritic::td_loss_and_grads`, clip,
///   Adam) on `batch` rows;
/// - `qgrad_ms`: the trainer's CPU `HostCritic::q_min_and_grad` (incl. reading the critic back)
///   on `batch·K` rows (value and ∇ₐ of min(Q1, Q2));
/// - `estimator_ms`: the posterior numerics (`EstInputs::run`) incl. candidate draws;
/// - `actor_step_ms`: the trainer's CPU actor step (`nets::host::actor`: velocity-net forward,
///   explicit backward, clip, Adam) on `batch` rows (without refreshing the burn module).
fn phases(cfg: &TrainConfig, o: usize, d: usize, reps: usize) -> Result<Value, CliError> {
    let cd = ComputeDevice::cpu();
    let dev = cd.device().clone();
    let ad = cd.autodiff();
    let mut r = rng::seeded(cfg.seed ^ 0xF00D);
    let (n, c, k) = (cfg.batch_size, cfg.candidates, cfg.posterior_samples);
    let actor = PolicyConfig {
        state_dim: o,
        act_dim: d,
        hidden: cfg.actor_hidden,
        blocks: cfg.actor_blocks,
        emb_width: cfg.emb_width,
        param: Parameterisation::Flow,
        ..Default::default()
    }
    .init(&ad, &mut r);
    let critic = CriticConfig {
        layers: cfg.critic_layers,
        ..CriticConfig::new(o, d, cfg.critic_hidden)
    }
    .init(&ad, &mut r);
    let critic_v = critic.valid();
    let ode = OdeConfig {
        solver: cfg.solver,
        steps: cfg.ode_steps,
        ..Default::default()
    };
    let rows = 2 * n * c;
    let s_rows = rng::normals(&mut r, rows * o);
    let mut sampler = HostSampler::default();
    let sample_ms = time_median(reps, || {
        let hp = block(host::load::policy(&actor))?;
        let hc = block(host::load::critic(&critic))?;
        let mut y = rng::normals(&mut r, rows * d);
        let mut q = vec![0.0f32; rows];
        sampler.sample_scored(&hp, &hc, &mut y, &s_rows, cfg.lambda, &ode, &mut q);
        Ok(())
    })? * 1e3;
    let s_n = rng::normals(&mut r, n * o);
    let a_n: Vec<f32> = (0..n * d)
        .map(|_| rng::uniform(&mut r, -1.0, 1.0))
        .collect();
    let td_ms = time_median(reps, || {
        let q = critic_v.q_min(
            tensor2(s_n.clone(), n, o, &dev),
            tensor2(a_n.clone(), n, d, &dev),
        );
        block(read_f32(q))?;
        Ok(())
    })? * 1e3;
    let y_n = rng::normals(&mut r, n);
    let mut hc = block(host::load::critic(&critic))?;
    let mut critic_adam = HostAdam::default();
    let mut critic_scratch = CriticTrainScratch::default();
    let critic_step_ms = time_median(reps, || {
        let (_, mut g) = hc.td_loss_and_grads(&s_n, &a_n, &y_n, &mut critic_scratch);
        let norm = host::optim::global_norm(&g);
        host::optim::clip(&mut g, norm, cfg.grad_clip);
        critic_adam.step(hc.params_mut(), &g, cfg.critic_lr);
        Ok(())
    })? * 1e3;
    let s_k = rng::normals(&mut r, n * k * o);
    let x_k = rng::normals(&mut r, n * k * d);
    let qgrad_ms = time_median(reps, || {
        let hc = block(host::load::critic(&critic))?;
        let a: Vec<f32> = x_k.iter().map(|u| u.tanh()).collect();
        let (mut q, mut g) = (vec![0.0f32; n * k], vec![0.0f32; n * k * d]);
        hc.q_min_and_grad(&s_k, &a, &mut q, &mut g);
        Ok(())
    })? * 1e3;
    let est = Algo::Rfm.estimator().expect("rfm has an estimator");
    let estimator_ms = time_median(reps, || {
        let inp = EstInputs::new(n, k, d, &mut r);
        inp.run(&est, cfg.lambda)?;
        Ok(())
    })? * 1e3;
    let t_n: Vec<f32> = (0..n).map(|_| rng::uniform(&mut r, 0.01, 0.99)).collect();
    let x_n = rng::normals(&mut r, n * d);
    let v_n = rng::normals(&mut r, n * d);
    let mut hp = block(host::load::policy(&actor))?;
    let mut adam = HostAdam::default();
    let mut scratch = ActorScratch::default();
    let actor_step_ms = time_median(reps, || {
        let (_, mut g) =
            host::actor::loss_and_grads(&hp, &s_n, &x_n, &t_n, cfg.lambda, &v_n, &mut scratch);
        let norm = host::actor::global_norm(&g);
        host::actor::clip(&mut g, norm, cfg.grad_clip);
        adam.step(hp.params_mut(), &g, cfg.actor_lr);
        Ok(())
    })? * 1e3;
    let total = sample_ms + td_ms + critic_step_ms + qgrad_ms + estimator_ms + actor_step_ms;
    Ok(json!({
        "sample_ms": sample_ms,
        "td_ms": td_ms,
        "critic_step_ms": critic_step_ms,
        "qgrad_ms": qgrad_ms,
        "estimator_ms": estimator_ms,
        "actor_step_ms": actor_step_ms,
        "sum_ms": total,
    }))
}

fn bench_one(name: &str, cfg: &TrainConfig, args: &Args, env: EnvName) -> Result<Value, CliError> {
    let spec = make_env(env, cfg.seed).spec().clone();
    let (o, d) = (spec.obs_dim, spec.act_dim);
    let want = |m: &str| args.measure.split(',').any(|x| x.trim() == m);
    let reps = args.repeats.max(1);
    let mut out = json!({
        "config": name,
        "env": env.as_str(),
        "obs_dim": o,
        "act_dim": d,
        "batch": cfg.batch_size,
        "k": cfg.posterior_samples,
        "candidates": cfg.candidates,
        "ode_steps": cfg.ode_steps,
        "actor_hidden": cfg.actor_hidden,
        "critic_hidden": cfg.critic_hidden,
        "emb_width": cfg.emb_width,
        "repeats": reps,
        "seconds": args.seconds,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    let obj = out.as_object_mut().expect("an object");
    if want("updates") {
        let mut trainer = ready_trainer(cfg, env)?;
        for _ in 0..2 {
            block(trainer.step())?;
        }
        let mut runs = Vec::with_capacity(reps);
        for _ in 0..reps {
            runs.push(rate(args.seconds, || {
                block(trainer.step())?;
                Ok(1)
            })?);
        }
        obj.insert("updates_per_s_runs".into(), json!(runs));
        obj.insert("updates_per_s".into(), json!(median(runs)));
    }
    if want("actions") {
        let mut trainer = Trainer::new(
            cfg.clone(),
            make_env(env, cfg.seed),
            Algo::Rfm,
            ComputeDevice::cpu(),
        )?;
        let per_episode = match env {
            EnvName::Pendulum => rfm_playground::envs::pendulum::MAX_STEPS,
            _ => 0,
        };
        if per_episode == 0 {
            return Err("--measure actions needs --env pendulum (fixed 200-step episodes)".into());
        }
        block(trainer.evaluate(1))?;
        let mut runs = Vec::with_capacity(reps);
        for _ in 0..reps {
            runs.push(rate(args.seconds, || {
                block(trainer.evaluate(1))?;
                Ok(per_episode)
            })?);
        }
        obj.insert("actions_per_s_runs".into(), json!(runs));
        obj.insert("actions_per_s".into(), json!(median(runs)));
    }
    if want("estimator") {
        let est = Algo::Rfm.estimator().expect("rfm has an estimator");
        let inp = EstInputs::new(
            cfg.batch_size,
            cfg.posterior_samples,
            d,
            &mut rng::seeded(cfg.seed),
        );
        let mut runs = Vec::with_capacity(reps);
        for _ in 0..reps {
            runs.push(rate(args.seconds, || {
                inp.run(&est, cfg.lambda)?;
                Ok(inp.n)
            })?);
        }
        obj.insert("estimator_targets_per_s_runs".into(), json!(runs));
        obj.insert("estimator_targets_per_s".into(), json!(median(runs)));
    }
    if args.phases {
        obj.insert("phases".into(), phases(cfg, o, d, reps.max(5))?);
    }
    Ok(out)
}

pub fn run(args: Args) -> Result<(), CliError> {
    let env: EnvName = args.env.parse()?;
    let names: Vec<&str> = match args.config.as_str() {
        "both" => vec!["playground", "released"],
        "playground" => vec!["playground"],
        "released" => vec!["released"],
        other => {
            return Err(format!("unknown --config '{other}' (playground, released, both)").into());
        }
    };
    if !(args.seconds.is_finite() && args.seconds >= 0.0) {
        return Err("--seconds must be a finite number ≥ 0".into());
    }
    for name in names {
        let mut cfg = if name == "playground" {
            TrainConfig::playground()
        } else {
            TrainConfig::released()
        };
        cfg.seed = args.seed;
        if let Some(o) = &args.overrides {
            cfg = cfg.with_overrides(o)?;
        }
        println!("{}", bench_one(name, &cfg, &args, env)?);
    }
    Ok(())
}
