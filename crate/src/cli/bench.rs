//! `rfm bench`: throughput of the RFM agent on the CPU backend (or, in a build with
//! `--features webgpu`, on a native wgpu adapter: `--backend webgpu`), one JSON line per config — a
//! thin caller of [`rfm_playground::throughput`] (the same figures the page's `?bench` mode
//! measures):
//! - `updates_per_s`: full RFM updates ([`rfm_playground::trainer::Trainer::step`] with warm-up
//!   off on a pre-filled replay buffer: sampling, TD target, critic step, K-sample posterior
//!   with ∇ₐQ, estimator, actor step, Polyak, plus one exploring action);
//! - `actions_per_s`: greedy action selections one at a time along the env's trajectory
//!   (candidates × ODE steps + argmax Q, what evaluation does per env step);
//! - `estimator_targets_per_s`: the posterior pipeline alone, per state, K candidates each;
//! - `matmul_gflop_per_s` (`--measure products`): the host nets' matrix product alone, one
//!   thread, at the sampler's hidden-layer shape — the arithmetic peak the CPU figures rest on.
//!
//! Each figure is the median of `--repeats` runs of about `--seconds` each (the runs are
//! listed too). `--seeds 1,8,32` measures updates with that many agents stepped together, as
//! the page steps an experiment's seeds: one line per number, `updates_per_s` per agent.

use rfm_playground::device::{BackendChoice, ComputeDevice};
use rfm_playground::envs::{EnvName, make_env};
use rfm_playground::spec::fields::MAX_SEEDS;
use rfm_playground::spec::resolve;
use rfm_playground::throughput::{self, Throughput};
use rfm_playground::trainer::TrainConfig;
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
    /// JSON object of experiment-spec fields laid over the named spec, e.g. '{"batch":512}'.
    #[arg(long)]
    overrides: Option<String>,
    /// Comma-separated measurements: updates, actions, estimator, products.
    #[arg(long, default_value = "updates,actions,estimator")]
    measure: String,
    /// Seed of the networks and the random transitions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Comma-separated numbers of agents stepped together for `updates` (as the page steps an
    /// experiment's seeds), e.g. 1,8,32: `updates_per_s` is then per agent, one row per number.
    #[arg(long, default_value = "1")]
    seeds: String,
    /// cpu, or webgpu: the WebGPU module's kernels on a native wgpu adapter (Vulkan, Metal,
    /// DX12, GL; Mesa's lavapipe without a GPU), in a build with `--features webgpu`.
    #[arg(long, default_value = "cpu")]
    backend: String,
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

fn bench_one(
    name: &str,
    cfg: &TrainConfig,
    args: &Args,
    env: EnvName,
    device: &ComputeDevice,
    seeds: usize,
) -> Result<Value, CliError> {
    let spec = make_env(env, cfg.seed).spec().clone();
    let which: Vec<&str> = args.measure.split(',').map(str::trim).collect();
    let reps = args.repeats.max(1);
    let mut runs: Vec<Throughput> = Vec::with_capacity(reps);
    for _ in 0..reps {
        let r = pollster::block_on(throughput::run(
            name,
            cfg,
            device.clone(),
            env,
            args.seconds,
            &which,
            seeds,
        ))?;
        if let Some(e) = r.errors.first() {
            return Err(e.clone().into());
        }
        runs.push(r);
    }
    let mut out = json!({
        "config": name,
        "backend": device.kind().to_string(),
        "adapter": device.info().adapter,
        "env": env.as_str(),
        "obs_dim": spec.obs_dim,
        "act_dim": spec.act_dim,
        "batch": cfg.batch_size,
        "k": cfg.posterior_samples,
        "candidates": cfg.candidates,
        "ode_steps": cfg.ode_steps,
        "actor_hidden": cfg.actor_hidden,
        "critic_hidden": cfg.critic_hidden,
        "emb_width": cfg.emb_width,
        "estimator": cfg.estimator.name(),
        "param": cfg.param.to_string(),
        "seeds": seeds,
        "repeats": reps,
        "seconds": args.seconds,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    let obj = out.as_object_mut().expect("an object");
    type Pick = fn(&Throughput) -> Option<f64>;
    let figures: [(&str, Pick); 4] = [
        ("updates_per_s", |r| r.updates.as_ref().map(|x| x.per_s)),
        ("actions_per_s", |r| r.actions.as_ref().map(|x| x.per_s)),
        ("estimator_targets_per_s", |r| {
            r.estimator_targets.as_ref().map(|x| x.per_s)
        }),
        ("matmul_gflop_per_s", |r| {
            r.products.as_ref().map(|x| x.gflop_per_s)
        }),
    ];
    for (key, pick) in figures {
        let v: Vec<f64> = runs.iter().filter_map(pick).collect();
        if !v.is_empty() {
            obj.insert(format!("{key}_runs"), json!(v));
            obj.insert(key.into(), json!(median(v)));
        }
    }
    if let Some(p) = runs.first().and_then(|r| r.products.as_ref()) {
        obj.insert("matmul_shape".into(), json!([p.m, p.k, p.n]));
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
    let device = match args.backend.as_str() {
        "cpu" => ComputeDevice::cpu(),
        "webgpu" => pollster::block_on(ComputeDevice::select(BackendChoice::Webgpu))?,
        other => return Err(format!("unknown --backend '{other}' (cpu, webgpu)").into()),
    };
    let seeds = args
        .seeds
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_SEEDS).contains(n))
                .ok_or_else(|| format!("--seeds: '{s}' is not a number from 1 to {MAX_SEEDS}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for name in names {
        let mut cfg = resolve::named_train_config(name, args.overrides.as_deref())?;
        cfg.seed = args.seed;
        for &n in &seeds {
            println!("{}", bench_one(name, &cfg, &args, env, &device, n)?);
        }
    }
    Ok(())
}
