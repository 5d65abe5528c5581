//! The parity suite: the same seed and the same inputs through both implementations of the
//! seam (host kernels and burn on flex), step by step and over whole agent updates.

use super::*;
use crate::nets::Parameterisation;
use crate::replay::Batch;
use crate::rng::{self, seeded};
use crate::trainer::rfm::{RfmAgent, nets_spec};
use crate::trainer::weights::param_names;
use crate::trainer::{Agent, TrainConfig};

fn block<T>(f: impl Future<Output = T>) -> T {
    pollster::block_on(f)
}

fn tiny(param: Parameterisation) -> TrainConfig {
    TrainConfig {
        agent: Agent::Rfm,
        param,
        critic_hidden: 16,
        actor_hidden: 16,
        emb_width: 8,
        batch_size: 12,
        posterior_samples: 6,
        candidates: 3,
        ode_steps: 3,
        seed: 5,
        ..TrainConfig::playground()
    }
}

/// `|a − b| ≤ tol · max(1, |a|)` everywhere.
fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * x.abs().max(1.0),
            "{what}[{i}]: host {x} vs burn {y}"
        );
    }
}

fn both(cfg: &TrainConfig, o: usize, d: usize) -> (Nets, Nets) {
    both_on(cfg, o, d, &ComputeDevice::cpu())
}

/// The host nets, and the burn nets on `burn_device` (flex, or wgpu with the fused sampler).
fn both_on(cfg: &TrainConfig, o: usize, d: usize, burn_device: &ComputeDevice) -> (Nets, Nets) {
    let spec = nets_spec(cfg, o, d);
    (
        Nets::new(
            &spec,
            &ComputeDevice::cpu(),
            Impl::Host,
            &mut seeded(cfg.seed),
        ),
        Nets::new(&spec, burn_device, Impl::Burn, &mut seeded(cfg.seed)),
    )
}

/// The whole update's settings the tests use: `cfg`'s, discount 0.9, both learning rates 1e-2.
fn update_spec<'a>(cfg: &'a TrainConfig, path: &'a crate::rfm::path::Path) -> UpdateSpec<'a> {
    UpdateSpec {
        candidates: cfg.candidates,
        gamma: 0.9,
        critic_lr: 1e-2,
        actor_lr: 1e-2,
        posterior: PosteriorStep {
            path,
            proposal: &cfg.proposal,
            estimator: &cfg.estimator,
            k: cfg.posterior_samples,
            regression: crate::trainer::rfm::regression(cfg.param),
            lambda: cfg.lambda,
        },
    }
}

fn exported(n: &Nets) -> Vec<NamedTensor> {
    let mut out = Vec::new();
    block(n.export(&mut out)).unwrap();
    out
}

#[test]
fn host_names_are_the_burn_module_paths() {
    let cfg = tiny(Parameterisation::Flow);
    let (host, burn) = both(&cfg, 3, 2);
    let names = |n: &Nets| -> Vec<(String, Vec<usize>)> {
        exported(n).into_iter().map(|t| (t.name, t.shape)).collect()
    };
    let (h, b) = (names(&host), names(&burn));
    assert_eq!(h, b);
    let spec = nets_spec(&cfg, 3, 2);
    let dev = ComputeDevice::cpu();
    let policy = spec.policy.init(dev.device(), &mut seeded(0));
    assert_eq!(
        param_names("actor", &policy),
        h[..param_names("actor", &policy).len()]
    );
    assert!(h.iter().any(|(n, _)| n == "actor.blocks.1.bias"));
    assert!(h.iter().any(|(n, _)| n == "target.q2.layers.2.weight"));
}

#[test]
fn every_seam_step_agrees_between_host_and_burn() {
    seam_parity(&ComputeDevice::cpu(), 1e-4);
}

/// The same on a native wgpu adapter (`--features webgpu`; Mesa's lavapipe on a machine with
/// no GPU): burn's kernels, and the fused ODE + critic kernel for the sampling (`nets::fused`).
#[cfg(feature = "webgpu")]
#[test]
fn every_seam_step_agrees_between_host_and_wgpu() {
    let dev = block(ComputeDevice::webgpu()).expect("a wgpu adapter (e.g. mesa-vulkan-drivers)");
    eprintln!("wgpu adapter: {}", dev.info().adapter);
    seam_parity(&dev, 1e-4);
}

fn seam_parity(burn_device: &ComputeDevice, tol: f32) {
    for (param, solver) in [
        (Parameterisation::Flow, crate::nets::Solver::Euler),
        (Parameterisation::Diffusion, crate::nets::Solver::Heun),
    ] {
        let cfg = TrainConfig {
            solver,
            ..tiny(param)
        };
        let (o, d, n) = (3, 2, 10);
        let (mut host, mut burn) = both_on(&cfg, o, d, burn_device);
        close(
            &exported(&host)
                .into_iter()
                .flat_map(|t| t.data)
                .collect::<Vec<_>>(),
            &exported(&burn)
                .into_iter()
                .flat_map(|t| t.data)
                .collect::<Vec<_>>(),
            0.0,
            "initial weights",
        );
        let r = &mut seeded(9);
        for it in 0..4 {
            let s = rng::normals(r, n * o);
            let y0 = rng::normals(r, n * d);
            let (yh, qh) = block(host.sample_scored(y0.clone(), &s)).unwrap();
            let (yb, qb) = block(burn.sample_scored(y0, &s)).unwrap();
            close(&yh, &yb, tol, "sampled latents");
            close(&qh, &qb, tol, "candidate scores");
            let a: Vec<f32> = yh.iter().map(|v| v.tanh()).collect();
            close(
                &block(host.target_q(&s, &a)).unwrap(),
                &block(burn.target_q(&s, &a)).unwrap(),
                tol,
                "target Q",
            );
            let batch = Batch {
                n,
                obs: s.clone(),
                act: a.clone(),
                rew: rng::normals(r, n),
                next_obs: rng::normals(r, n * o),
                done: (0..n).map(|i| (i % 4 == 0) as u8 as f32).collect(),
            };
            if it % 2 == 1 {
                // A whole update (on WebGPU all on the device, one readback), the same draws.
                let path = cfg.param.path();
                let spec = update_spec(&cfg, &path);
                let seed = 100 + it as u64;
                let [uh, ub] = [&mut host, &mut burn]
                    .map(|nets| block(nets.rfm_update(&batch, &spec, &mut seeded(seed))).unwrap());
                let (ch, cb) = (uh.critic, ub.critic);
                close(
                    &[ch.loss, ch.norm],
                    &[cb.loss, cb.norm],
                    tol,
                    "update's critic step",
                );
                let (ph, pb) = (uh.posterior.unwrap(), ub.posterior.unwrap());
                close(&[ph.mean_ess], &[pb.mean_ess], tol, "posterior ESS");
                let (ah, ab) = (ph.actor, pb.actor);
                close(
                    &[ah.loss, ah.norm],
                    &[ab.loss, ab.norm],
                    tol,
                    "update's actor step",
                );
                // What it staged is what staged_critic_loss reports.
                assert_eq!(block(burn.staged_critic_loss()).unwrap(), cb);
            } else {
                // The TD step (the burn side keeps the target on the device) at iteration 2, a
                // given target at 0.
                let y: Vec<f32> = rng::normals(r, n);
                // The TD step's loss and norm are asked for after the staged Q (on WebGPU they
                // stay on the device until then); the plain step's come back at once, and again
                // from staged_critic_loss.
                let direct = if it == 2 {
                    block(host.td_critic_step(&batch, &a, 0.9, 1e-2)).unwrap();
                    block(burn.td_critic_step(&batch, &a, 0.9, 1e-2)).unwrap();
                    None
                } else {
                    Some((
                        block(host.critic_step(&s, &a, &y, 1e-2)).unwrap(),
                        block(burn.critic_step(&s, &a, &y, 1e-2)).unwrap(),
                    ))
                };
                let (qh, gh) = block(host.q_and_grad(&s, &a, true)).unwrap();
                let (qb, gb) = block(burn.q_and_grad(&s, &a, true)).unwrap();
                close(&qh, &qb, tol, "staged Q");
                close(&gh, &gb, tol, "staged ∇ₐQ");
                let ch = block(host.staged_critic_loss()).unwrap();
                let cb = block(burn.staged_critic_loss()).unwrap();
                if let Some((dh, db)) = direct {
                    assert_eq!(
                        (dh, db),
                        (ch, cb),
                        "a step's loss is the same however it is asked"
                    );
                }
                close(&[ch.loss, ch.norm], &[cb.loss, cb.norm], tol, "critic step");
                let t: Vec<f32> = (0..n).map(|_| rng::uniform(r, 0.01, 0.99)).collect();
                let xt = rng::normals(r, n * d);
                let target = rng::normals(r, n * d);
                let ah = block(host.actor_step(&s, &xt, &t, &target, 1e-2)).unwrap();
                let ab = block(burn.actor_step(&s, &xt, &t, &target, 1e-2)).unwrap();
                close(&[ah.loss, ah.norm], &[ab.loss, ab.norm], tol, "actor step");
            }
            host.commit(0.1);
            burn.commit(0.1);
            let (eh, eb) = (exported(&host), exported(&burn));
            for (th, tb) in eh.iter().zip(&eb) {
                assert_eq!(th.name, tb.name);
                close(
                    &th.data,
                    &tb.data,
                    tol,
                    &format!("{param} it {it} {}", th.name),
                );
            }
        }
    }
}

#[test]
fn agent_updates_agree_between_host_and_burn() {
    agent_parity(&ComputeDevice::cpu(), &["rfm"], 2e-3);
}

/// The whole update on a native wgpu adapter (`--features webgpu`): the fused critic step,
/// posterior (every estimator) and actor step against the host's.
#[cfg(feature = "webgpu")]
#[test]
fn agent_updates_agree_between_host_and_wgpu() {
    let dev = block(ComputeDevice::webgpu()).expect("a wgpu adapter (e.g. mesa-vulkan-drivers)");
    agent_parity(&dev, &["rfm", "noise", "grad", "cv-iso", "cv-pool"], 5e-3);
}

fn agent_parity(burn_device: &ComputeDevice, estimators: &[&str], tol: f32) {
    for (param, name) in [Parameterisation::Flow, Parameterisation::Diffusion]
        .into_iter()
        .flat_map(|p| estimators.iter().map(move |e| (p, *e)))
    {
        let cfg = TrainConfig {
            estimator: crate::rfm::estimators::Estimator::from_name(name).unwrap(),
            ..tiny(param)
        };
        let (o, d, n) = (3, 1, cfg.batch_size);
        let cpu = ComputeDevice::cpu();
        let mut agents = [(Impl::Host, &cpu), (Impl::Burn, burn_device)]
            .map(|(w, dev)| RfmAgent::with_impl(&cfg, o, d, dev, w, &mut seeded(cfg.seed)));
        let r = &mut seeded(2);
        for step in 1..=4 {
            let batch = Batch {
                n,
                obs: rng::normals(r, n * o),
                act: (0..n * d).map(|_| rng::uniform(r, -1.0, 1.0)).collect(),
                rew: rng::normals(r, n),
                next_obs: rng::normals(r, n * o),
                done: vec![0.0; n],
            };
            let seed = rng::normal(r).to_bits() as u64;
            let [h, b] = &mut agents;
            let sh = block(h.update(&batch, step, &mut seeded(seed))).unwrap();
            let sb = block(b.update(&batch, step, &mut seeded(seed))).unwrap();
            close(
                &[sh.critic_loss, sh.actor_loss, sh.ess.unwrap()],
                &[sb.critic_loss, sb.actor_loss, sb.ess.unwrap()],
                tol,
                &format!("{param} {name} update {step}"),
            );
        }
    }
}

#[test]
fn a_critic_loss_is_asked_only_of_a_staged_step() {
    let cfg = tiny(Parameterisation::Flow);
    let (o, d, n) = (3, 2, 5);
    let (mut host, mut burn) = both(&cfg, o, d);
    let r = &mut seeded(9);
    let batch = Batch {
        n,
        obs: rng::normals(r, n * o),
        act: rng::normals(r, n * d),
        rew: rng::normals(r, n),
        next_obs: rng::normals(r, n * o),
        done: vec![0.0; n],
    };
    let a_next = rng::normals(r, n * d);
    for nets in [&mut host, &mut burn] {
        let none = block(nets.staged_critic_loss()).unwrap_err().to_string();
        assert!(none.contains("no critic step is staged"), "{none}");
        block(nets.td_critic_step(&batch, &a_next, 0.9, 1e-3)).unwrap();
        let step = block(nets.staged_critic_loss()).unwrap();
        assert!(step.loss.is_finite() && step.norm > 0.0, "{step:?}");
        // Asked twice, the same numbers (read once); gone after the commit.
        assert_eq!(block(nets.staged_critic_loss()).unwrap(), step);
        nets.commit(0.005);
        assert!(block(nets.staged_critic_loss()).is_err());
    }
}

/// Several seeds' updates in the same kernels (`batch`, WebGPU) against each seed's update
/// alone, from the same weights, batches and draws: the same stats and, after the commits,
/// the same weights. Seed 1 sits out the third round (it leaves without an update, so the
/// others must not wait for it), which leaves its optimisers a step behind in the fourth
/// (Adam's per-seed fallback).
#[cfg(feature = "webgpu")]
#[test]
fn seeds_updated_in_the_same_kernels_match_each_seed_alone() {
    use super::batch::SeedGather;
    let dev = block(ComputeDevice::webgpu()).expect("a wgpu adapter (e.g. mesa-vulkan-drivers)");
    let seeds = 3;
    for (param, d) in [
        (Parameterisation::Flow, 1),
        (Parameterisation::Diffusion, 2),
    ] {
        let cfg = tiny(param);
        let (o, n) = (3, cfg.batch_size);
        let spec = nets_spec(&cfg, o, d);
        let build = |i: usize| Nets::new(&spec, &dev, Impl::Burn, &mut seeded(cfg.seed + i as u64));
        let mut alone: Vec<Nets> = (0..seeds).map(build).collect();
        let mut together: Vec<Nets> = (0..seeds).map(build).collect();
        let gather = SeedGather::new(seeds);
        for (i, nets) in together.iter_mut().enumerate() {
            nets.join_gather(gather.clone(), i);
        }
        let path = cfg.param.path();
        let update = update_spec(&cfg, &path);
        let r = &mut seeded(21);
        for round in 0..4 {
            let inputs: Vec<(Batch, u64)> = (0..seeds)
                .map(|_| {
                    let batch = Batch {
                        n,
                        obs: rng::normals(r, n * o),
                        act: (0..n * d).map(|_| rng::uniform(r, -1.0, 1.0)).collect(),
                        rew: rng::normals(r, n),
                        next_obs: rng::normals(r, n * o),
                        done: (0..n).map(|i| (i % 5 == 0) as u8 as f32).collect(),
                    };
                    (batch, rng::normal(r).to_bits() as u64)
                })
                .collect();
            let sits_out = |i: usize| round == 2 && i == 1;
            let want: Vec<Option<UpdateOut>> = alone
                .iter_mut()
                .zip(&inputs)
                .enumerate()
                .map(|(i, (nets, (batch, seed)))| {
                    (!sits_out(i)).then(|| {
                        block(nets.rfm_update(batch, &update, &mut seeded(*seed))).unwrap()
                    })
                })
                .collect();
            gather.open_round();
            let got: Vec<Option<UpdateOut>> =
                block(futures_util::future::join_all(
                    together.iter_mut().zip(&inputs).enumerate().map(
                        |(i, (nets, (batch, seed)))| {
                            let (gather, update) = (gather.clone(), &update);
                            async move {
                                let out = if sits_out(i) {
                                    None
                                } else {
                                    Some(
                                        nets.rfm_update(batch, update, &mut seeded(*seed))
                                            .await
                                            .unwrap(),
                                    )
                                };
                                gather.leave(i);
                                out
                            }
                        },
                    ),
                ));
            gather.close_round();
            let ran = if round == 2 { seeds - 1 } else { seeds };
            assert_eq!(
                gather.last_batch(),
                ran,
                "{param} round {round}: one batch of every update"
            );
            for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                let what = format!("{param} round {round} seed {i}");
                let (Some(w), Some(g)) = (w, g) else {
                    assert!(
                        w.is_none() && g.is_none(),
                        "{what}: sat out in one run only"
                    );
                    continue;
                };
                let (pw, pg) = (w.posterior.as_ref().unwrap(), g.posterior.as_ref().unwrap());
                close(
                    &[
                        w.critic.loss,
                        w.critic.norm,
                        pw.actor.loss,
                        pw.actor.norm,
                        pw.mean_ess,
                    ],
                    &[
                        g.critic.loss,
                        g.critic.norm,
                        pg.actor.loss,
                        pg.actor.norm,
                        pg.mean_ess,
                    ],
                    2e-4,
                    &what,
                );
            }
            for (i, (a, t)) in alone.iter_mut().zip(&mut together).enumerate() {
                if !sits_out(i) {
                    a.commit(0.1);
                    t.commit(0.1);
                }
                for (x, y) in exported(a).iter().zip(&exported(t)) {
                    assert_eq!(x.name, y.name);
                    close(
                        &x.data,
                        &y.data,
                        2e-4,
                        &format!("{param} round {round} seed {i} {}", x.name),
                    );
                }
            }
        }
    }
}
