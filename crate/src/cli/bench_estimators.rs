//! `rfm bench-estimators`: throughput and per-time variance / MSE of the posterior-mean
//! estimators on one target, printed as one JSON object.
//!
//! Ground truth for the MSE: the closed-form posterior of the Gaussian mixtures (`gmm8`,
//! `gmm40`, `gaussian`), otherwise a reference estimate with `--reference-k` candidates (the
//! unclipped control variate, consistent as K grows).

use std::time::Instant;

use rfm_playground::metrics::{VarianceBin, VarianceConfig, estimator_variance_by_t};
use rfm_playground::rfm::estimators::{
    Estimator, PosteriorBatch, Proposal, draw_candidates, estimate, estimate_with_target,
};
use rfm_playground::rfm::path::Path;
use rfm_playground::rfm::posterior::{PosteriorSpec, Regression, posterior_targets, ready};
use rfm_playground::rfm::targets::{GaussianMixture, LogDensity, TanhLatent, Target};
use rfm_playground::rng::{self, Rng, seeded};
use serde::Serialize;

use super::CliError;

/// `rfm bench-estimators --target gmm8 --path linear --k 100`
#[derive(clap::Args)]
pub struct Args {
    /// Target: gmm8, two-moons, rings, gmm40, gaussian (N((1, -0.5), 0.6² I)) or tanh-quad
    /// (Boltzmann target of a quadratic Q in the tanh latent, λ = 0.5).
    #[arg(long, default_value = "gmm8")]
    target: String,
    /// Path: linear or vp.
    #[arg(long, default_value = "linear")]
    path: String,
    /// Comma-separated estimators (noise, grad, eta:<η>, rfm, cv-iso, cv-pool).
    #[arg(long, default_value = "noise,grad,eta:0.5,rfm,cv-iso,cv-pool")]
    estimators: String,
    /// Candidates per estimate.
    #[arg(long, default_value_t = 100)]
    k: usize,
    /// Comma-separated times.
    #[arg(long, default_value = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9")]
    ts: String,
    /// Points x_t per time.
    #[arg(long, default_value_t = 16)]
    points: usize,
    /// Repeats per point (fresh candidates).
    #[arg(long, default_value_t = 64)]
    reps: usize,
    /// Candidates of the reference estimate where no closed form exists.
    #[arg(long, default_value_t = 20_000)]
    reference_k: usize,
    /// Points per throughput batch.
    #[arg(long, default_value_t = 256)]
    throughput_points: usize,
    /// Seed (the same x_t points are used for every estimator).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Serialize)]
struct Report {
    target: String,
    path: String,
    k: usize,
    points: usize,
    reps: usize,
    truth: &'static str,
    results: Vec<EstimatorReport>,
}

#[derive(Serialize)]
struct EstimatorReport {
    estimator: String,
    /// Points per second of `estimate` alone (candidates and target values precomputed).
    estimate_points_per_s: f64,
    /// Points per second of the whole posterior pipeline (draw + target evaluation + estimate
    /// + velocity target).
    full_points_per_s: f64,
    /// Mean over times of the velocity-target variance.
    mean_variance: f32,
    /// Mean over times of the velocity-target MSE.
    mean_mse: f32,
    bins: Vec<VarianceBin>,
}

/// Exact data sampler of a bench target: `(rng, n) -> [n * d]`.
type Sampler = Box<dyn Fn(&mut Rng, usize) -> Vec<f32>>;

/// The bench targets: density, exact data sampler, optional closed-form mixture.
struct BenchTarget {
    density: Box<dyn LogDensity>,
    mixture: Option<GaussianMixture>,
    sample: Sampler,
}

fn bench_target(name: &str) -> Result<BenchTarget, CliError> {
    match name {
        "gaussian" => {
            let g = GaussianMixture::gaussian(vec![1.0, -0.5], 0.6)?;
            let s = g.clone();
            Ok(BenchTarget {
                density: Box::new(g.clone()),
                mixture: Some(g),
                sample: Box::new(move |rng, n| s.sample(rng, n).unwrap_or_default()),
            })
        }
        "tanh-quad" => {
            // Q(a) = log N(a; a*, 0.3² I), λ = 0.5: in action space N(a*, 0.3² λ I) truncated
            // to (-1, 1)², so exact latent samples are atanh of truncated Gaussian draws.
            let a_star = [0.5f32, -0.3];
            let q = GaussianMixture::gaussian(a_star.to_vec(), 0.3)?;
            let lambda = 0.5f32;
            let sd = 0.3 * lambda.sqrt();
            Ok(BenchTarget {
                density: Box::new(TanhLatent::new(q, lambda)?),
                mixture: None,
                sample: Box::new(move |rng, n| {
                    let mut out = Vec::with_capacity(2 * n);
                    while out.len() < 2 * n {
                        let j = out.len() % 2;
                        let a = a_star[j] + sd * rng::normal(rng);
                        if a.abs() < 0.999 {
                            out.push(a.atanh());
                        }
                    }
                    out
                }),
            })
        }
        _ => {
            let t = Target::from_name(name)
                .map_err(|e| format!("{e} (the bench also knows: gaussian, tanh-quad)"))?;
            let s = t.clone();
            Ok(BenchTarget {
                mixture: t.mixture().cloned(),
                density: Box::new(t),
                sample: Box::new(move |rng, n| s.sample(rng, n).unwrap_or_default()),
            })
        }
    }
}

fn parse_list<T>(s: &str, f: impl Fn(&str) -> Result<T, CliError>) -> Result<Vec<T>, CliError> {
    s.split(',')
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(f)
        .collect()
}

pub fn run(args: Args) -> Result<(), CliError> {
    let path = Path::from_name(&args.path)?;
    let ests = parse_list(&args.estimators, |n| Ok(Estimator::from_name(n)?))?;
    let ts = parse_list(&args.ts, |v| {
        v.parse::<f32>()
            .map_err(|_| format!("bad time '{v}' in --ts").into())
    })?;
    if args.k == 0 || args.reps < 2 || args.points == 0 || args.throughput_points == 0 {
        return Err("need --k > 0, --reps >= 2, --points > 0, --throughput-points > 0".into());
    }
    let bt = bench_target(&args.target)?;
    let density = bt.density.as_ref();
    let d = density.dim();
    let data = (bt.sample)(&mut seeded(args.seed), args.points * ts.len());
    let reference = Estimator::OptimalCv {
        clip: 1e6,
        ridge: 0.0,
    };
    let ref_k = args.reference_k;
    let truth_mix = |xt: &[f32], t: &[f32]| match &bt.mixture {
        Some(m) => m.posterior_mean_x1(&path, xt, t),
        None => {
            let mut rng = seeded(args.seed ^ 0x5eed);
            estimate_with_target(&path, &reference, density, xt, t, ref_k, &mut rng)
                .map(|e| e.mu1)
                .unwrap_or_else(|_| vec![f32::NAN; xt.len()])
        }
    };
    let cfg = VarianceConfig {
        ts: ts.clone(),
        n_points: args.points,
        k: args.k,
        reps: args.reps,
    };
    // Throughput inputs: one batch of points spread over the times.
    let tn = args.throughput_points;
    let mut rng = seeded(args.seed.wrapping_add(1));
    let tp_t: Vec<f32> = (0..tn).map(|i| ts[i % ts.len()]).collect();
    let tp_x1 = (bt.sample)(&mut rng, tn);
    let tp_xt: Vec<f32> = (0..tn * d)
        .map(|o| {
            let c = path.coeffs(tp_t[o / d]);
            c.alpha * tp_x1[o] + c.beta * rng::normal(&mut rng)
        })
        .collect();
    let cand = draw_candidates(&path, &tp_xt, &tp_t, tn, args.k, d, &mut rng);
    let (lp, g) = density.evaluate(&cand.x1)?;
    let batch = PosteriorBatch {
        n: tn,
        k: args.k,
        d,
        xt: &tp_xt,
        t: &tp_t,
        x0: &cand.x0,
        x1: &cand.x1,
        logp1: &lp,
        grad_logp1: &g,
        log_iw: &[],
    };

    let mut results = Vec::new();
    for est in &ests {
        let estimate_pps = time_points(tn, || estimate(&path, est, &batch).map(|_| ()))?;
        let mut trng = seeded(args.seed.wrapping_add(2));
        let spec = PosteriorSpec {
            path: &path,
            proposal: &Proposal::Prior,
            estimators: std::slice::from_ref(est),
            k: args.k,
            regression: Regression::Velocity,
        };
        let full_pps = time_points(tn, || {
            ready(posterior_targets(
                &spec,
                &tp_xt,
                &tp_t,
                d,
                &mut trng,
                async |x1: &[f32]| density.evaluate(x1),
            ))
            .map(|_| ())
        })?;
        // Same seed for every estimator: the same x_t points.
        let bins = estimator_variance_by_t(
            &path,
            est,
            density,
            &data,
            Some(&truth_mix),
            &cfg,
            &mut seeded(args.seed.wrapping_add(3)),
        )?;
        let nb = bins.len().max(1) as f32;
        results.push(EstimatorReport {
            estimator: est.name(),
            estimate_points_per_s: estimate_pps,
            full_points_per_s: full_pps,
            mean_variance: bins.iter().map(|b| b.variance).sum::<f32>() / nb,
            mean_mse: bins.iter().map(|b| b.mse.unwrap_or(f32::NAN)).sum::<f32>() / nb,
            bins,
        });
    }
    let report = Report {
        target: args.target,
        path: path.name().into(),
        k: args.k,
        points: args.points,
        reps: args.reps,
        truth: if bt.mixture.is_some() {
            "closed-form"
        } else {
            "reference"
        },
        results,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Points per second of `f` (which handles `n` points), repeated for at least 0.2 s.
fn time_points<E: std::error::Error + 'static>(
    n: usize,
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<f64, CliError> {
    let start = Instant::now();
    let mut calls = 0u32;
    while calls < 3 || start.elapsed().as_secs_f64() < 0.2 {
        f().map_err(|e| Box::new(e) as CliError)?;
        calls += 1;
    }
    Ok(n as f64 * calls as f64 / start.elapsed().as_secs_f64())
}
