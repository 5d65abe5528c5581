//! Host nets against their burn originals on random weights (known answers: the burn forward
//! passes and `Policy::sample`).

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};

use super::{HostSampler, load};
use crate::device::{ComputeDevice, read_f32};
use crate::nets::critic::CriticConfig;
use crate::nets::{OdeConfig, Parameterisation, Policy, PolicyConfig, Solver};
use crate::rng::{self, Rng};

fn block<T>(f: impl Future<Output = T>) -> T {
    pollster::block_on(f)
}

fn t2(v: Vec<f32>, rows: usize, cols: usize, d: &ComputeDevice) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, [rows, cols]), d.device())
}

/// Give every layer with a bias a random one (init leaves them zero, which would hide a
/// dropped bias).
fn random_bias(l: &mut Linear, rng: &mut Rng, d: &ComputeDevice) {
    if l.bias.is_some() {
        let n = l.weight.val().dims()[1];
        let b: Vec<f32> = rng::normals(rng, n).iter().map(|v| 0.3 * v).collect();
        l.bias = Some(Param::from_data(TensorData::new(b, [n]), d.device()));
    }
}

fn policy(state_dim: usize, hidden: usize, param: Parameterisation, d: &ComputeDevice) -> Policy {
    let cfg = PolicyConfig {
        state_dim,
        act_dim: 2,
        hidden,
        emb_width: 8,
        param,
        ..Default::default()
    };
    cfg.validate().unwrap();
    let mut rng = rng::seeded(11);
    let mut p = cfg.init(d.device(), &mut rng);
    random_bias(&mut p.input, &mut rng, d);
    for b in &mut p.blocks {
        random_bias(b, &mut rng, d);
    }
    random_bias(&mut p.output, &mut rng, d);
    p
}

fn assert_close(want: &[f32], got: &[f32], tol: f32, what: &str) {
    assert_eq!(want.len(), got.len(), "{what}: lengths");
    for (i, (a, b)) in want.iter().zip(got).enumerate() {
        assert!(
            (a - b).abs() <= tol * (1.0 + a.abs()),
            "{what}[{i}]: burn {a} vs host {b}"
        );
    }
}

#[test]
fn policy_forward_matches_burn() {
    let d = ComputeDevice::cpu();
    for state_dim in [0, 3] {
        let p = policy(state_dim, 32, Parameterisation::Flow, &d);
        let host = block(load::policy(&p)).unwrap();
        let n = 17;
        let mut r = rng::seeded(3);
        let y = rng::normals(&mut r, n * 2);
        let s = rng::normals(&mut r, n * state_dim);
        let (t, lambda) = (0.37, 0.02);
        let burn_out = p.forward(
            t2(y.clone(), n, 2, &d),
            (state_dim > 0).then(|| t2(s.clone(), n, state_dim, &d)),
            p.conditioning(&[t], lambda, d.device()),
        );
        let want = block(read_f32(burn_out)).unwrap();
        let got = host.forward(&y, &s, t, lambda);
        for (a, b) in want.iter().zip(&got) {
            assert!((a - b).abs() <= 1e-5, "state_dim {state_dim}: {a} vs {b}");
        }
    }
}

#[test]
fn autodiff_module_loads_the_same_weights() {
    let d = ComputeDevice::cpu();
    let cfg = PolicyConfig {
        state_dim: 2,
        ..Default::default()
    };
    let ad = cfg.init(&d.autodiff(), &mut rng::seeded(4));
    let plain = cfg.init(d.device(), &mut rng::seeded(4));
    assert_eq!(
        block(load::policy(&ad)).unwrap(),
        block(load::policy(&plain)).unwrap()
    );
}

#[test]
fn sampler_matches_policy_sample() {
    let d = ComputeDevice::cpu();
    // hidden 128 → blocks of 256 rows: 600 rows span several blocks (and groups).
    let rows = 600;
    let mut sampler = HostSampler::default();
    for param in [Parameterisation::Flow, Parameterisation::Diffusion] {
        for state_dim in [0, 3] {
            let p = policy(state_dim, 128, param, &d);
            let host = block(load::policy(&p)).unwrap();
            let mut r = rng::seeded(5);
            let y0 = rng::normals(&mut r, rows * 2);
            let s = rng::normals(&mut r, rows * state_dim);
            for solver in [Solver::Euler, Solver::Heun] {
                let ode = OdeConfig {
                    solver,
                    steps: 7,
                    ..Default::default()
                };
                let out = p.sample(
                    t2(y0.clone(), rows, 2, &d),
                    (state_dim > 0).then(|| t2(s.clone(), rows, state_dim, &d)),
                    0.5,
                    &ode,
                    false,
                );
                let want = block(read_f32(out.y)).unwrap();
                let mut y = y0.clone();
                sampler.sample(&host, &mut y, &s, 0.5, &ode);
                assert_close(&want, &y, 1e-4, &format!("{param} {solver:?} s{state_dim}"));
            }
        }
    }
}

#[test]
fn critic_value_and_action_gradient_match_burn() {
    let d = ComputeDevice::cpu();
    // 600 rows: several blocks and a ragged last one; 1, 2 and 3 layers (linear head too).
    for layers in [1, 2, 3] {
        let (obs, act, rows) = (3, 2, 600);
        let mut rng = rng::seeded(20 + layers as u64);
        let mut critic = CriticConfig {
            layers,
            ..CriticConfig::new(obs, act, 40)
        }
        .init(d.device(), &mut rng);
        for head in [&mut critic.q1, &mut critic.q2] {
            for l in &mut head.layers {
                random_bias(l, &mut rng, &d);
            }
        }
        let hc = block(load::critic(&critic)).unwrap();
        let s = rng::normals(&mut rng, rows * obs);
        let a: Vec<f32> = rng::normals(&mut rng, rows * act)
            .iter()
            .map(|v| v.tanh())
            .collect();
        let (wq, wg) =
            critic.q_min_and_grad(t2(s.clone(), rows, obs, &d), t2(a.clone(), rows, act, &d));
        let (wq, wg) = (block(read_f32(wq)).unwrap(), block(read_f32(wg)).unwrap());
        let (mut q, mut g) = (vec![0.0; rows], vec![0.0; rows * act]);
        hc.q_min_and_grad(&s, &a, &mut q, &mut g);
        assert_close(&wq, &q, 1e-5, "q");
        assert_close(&wg, &g, 1e-5, "grad");
        // And the gradient is the derivative: a central difference of the host's own min Q.
        let h = 1e-2f32;
        for r in [0, 299, 599] {
            for j in 0..act {
                let mut ap = a[r * act..(r + 1) * act].to_vec();
                let mut am = ap.clone();
                ap[j] += h;
                am[j] -= h;
                let sr = &s[r * obs..(r + 1) * obs];
                let (mut qp, mut qm) = ([0.0f32], [0.0f32]);
                hc.q_min(sr, &ap, &mut qp, &mut Default::default());
                hc.q_min(sr, &am, &mut qm, &mut Default::default());
                let fd = (qp[0] - qm[0]) / (2.0 * h);
                assert!(
                    (fd - g[r * act + j]).abs() < 2e-2 * (1.0 + fd.abs()),
                    "{layers} layers, row {r}: fd {fd} vs {}",
                    g[r * act + j]
                );
            }
        }
    }
}

#[test]
fn critic_and_scored_sampler_match_burn() {
    let d = ComputeDevice::cpu();
    let (obs, rows) = (3, 300);
    let mut rng = rng::seeded(6);
    let mut critic = CriticConfig::new(obs, 2, 48).init(d.device(), &mut rng);
    for head in [&mut critic.q1, &mut critic.q2] {
        for l in &mut head.layers {
            random_bias(l, &mut rng, &d);
        }
    }
    let hc = block(load::critic(&critic)).unwrap();
    let s = rng::normals(&mut rng, rows * obs);
    let a: Vec<f32> = rng::normals(&mut rng, rows * 2)
        .iter()
        .map(|v| v.tanh())
        .collect();
    let want = block(read_f32(
        critic.q_min(t2(s.clone(), rows, obs, &d), t2(a.clone(), rows, 2, &d)),
    ))
    .unwrap();
    let mut q = vec![0.0; rows];
    hc.q_min(&s, &a, &mut q, &mut Default::default());
    for (x, y) in want.iter().zip(&q) {
        assert!((x - y).abs() <= 1e-5, "{x} vs {y}");
    }

    // Scored sampling: the scores are the critic at tanh of the host's own samples.
    let p = policy(obs, 64, Parameterisation::Flow, &d);
    let hp = block(load::policy(&p)).unwrap();
    let ode = OdeConfig::default();
    let mut y = rng::normals(&mut rng, rows * 2);
    let mut sampler = HostSampler::default();
    let mut scores = vec![0.0; rows];
    sampler.sample_scored(&hp, &hc, &mut y, &s, 0.02, &ode, &mut scores);
    let a: Vec<f32> = y.iter().map(|v| v.tanh()).collect();
    hc.q_min(&s, &a, &mut q, &mut Default::default());
    // Equal up to rounding: gemm may order a row's sums differently by its place in the matrix.
    assert_close(&q, &scores, 1e-6, "scores");
}

#[test]
fn reused_buffers_give_the_same_numbers() {
    let d = ComputeDevice::cpu();
    let p = policy(2, 64, Parameterisation::Flow, &d);
    let hp = block(load::policy(&p)).unwrap();
    let ode = OdeConfig::default();
    let mut r = rng::seeded(8);
    // 37 rows are cut into blocks of 19 on two workers, 1500 into blocks of 512.
    let (big, small) = (1500, 37);
    let y_big = rng::normals(&mut r, big * 2);
    let s_big = rng::normals(&mut r, big * 2);
    let run = |sampler: &mut HostSampler, n: usize| {
        let mut y = y_big[..n * 2].to_vec();
        sampler.sample(&hp, &mut y, &s_big[..n * 2], 0.1, &ode);
        y
    };
    let fresh_small = run(&mut HostSampler::default(), small);
    let mut reused = HostSampler::default();
    let first_big = run(&mut reused, big);
    assert_eq!(run(&mut reused, small), fresh_small);
    assert_eq!(run(&mut reused, big), first_big);
    // Rows are independent: the first rows of the big call are the small call's (up to the
    // rounding of gemm's position-dependent kernels).
    assert_close(&first_big[..small * 2], &fresh_small, 1e-5, "rows");
}

#[test]
fn actor_step_matches_burn_autodiff_clip_and_adam() {
    use super::actor::{ActorScratch, HostAdam, loss_and_grads};
    use burn::optim::{AdamConfig, GradientsParams};

    let cd = ComputeDevice::cpu();
    let ad = cd.autodiff();
    let cfg = PolicyConfig {
        state_dim: 3,
        act_dim: 2,
        hidden: 24,
        emb_width: 8,
        blocks: 2,
        ..Default::default()
    };
    let mut rng = rng::seeded(31);
    let mut p = cfg.init(&ad, &mut rng);
    let mut layers: Vec<&mut Linear> = vec![&mut p.input, &mut p.output];
    layers.extend(p.blocks.iter_mut());
    for l in layers {
        let n = l.weight.val().dims()[1];
        let b: Vec<f32> = rng::normals(&mut rng, n).iter().map(|v| 0.3 * v).collect();
        l.bias = Some(Param::from_data(TensorData::new(b, [n]), &ad));
    }
    // The host's parameter order is the exported (and imported) order.
    let mut exported = Vec::new();
    block(crate::trainer::export_module("actor", &p, &mut exported)).unwrap();
    let mut hp = block(load::policy(&p)).unwrap();
    let listed = hp.params();
    assert_eq!(exported.len(), listed.len());
    for (e, (shape, v)) in exported.iter().zip(&listed) {
        assert_eq!(&e.shape, shape, "{}", e.name);
        assert_eq!(&e.data[..], *v, "{}", e.name);
    }

    let n = 40;
    let s = rng::normals(&mut rng, n * 3);
    let y = rng::normals(&mut rng, n * 2);
    let target = rng::normals(&mut rng, n * 2);
    let t: Vec<f32> = (0..n).map(|_| rng::uniform(&mut rng, 0.01, 0.99)).collect();
    let lambda = 0.3;
    let rows =
        |v: &Vec<f32>, c: usize| Tensor::<2>::from_data(TensorData::new(v.clone(), [n, c]), &ad);
    let mut opt = AdamConfig::new().init();
    let mut bp = p;
    let mut adam = HostAdam::default();
    let mut ws = ActorScratch::default();
    // Step 1 unclipped, steps 2-3 with a clip below the norm.
    for (step, max_norm) in [(0, 1e3f32), (1, 0.05), (2, 0.05)] {
        let cond = bp.conditioning(&t, lambda, &ad);
        let pred = bp.forward(rows(&y, 2), Some(rows(&s, 3)), cond);
        let loss = (pred - rows(&target, 2)).square().mean();
        let value = loss.clone().inner();
        let grads = GradientsParams::from_grads(loss.backward(), &bp);
        let c = block(crate::trainer::clip_global_norm(
            grads, &bp, max_norm, value,
        ))
        .unwrap();
        let (want_loss, want_norm) = (c.loss, c.norm);
        bp = opt.step(1e-2, bp, c.grads);

        let (got_loss, g) = loss_and_grads(&hp, &s, &y, &t, lambda, &target, &mut ws);
        let want = block(load::policy(&bp)).unwrap();
        host_step_matches(
            step,
            (want_loss, want_norm),
            got_loss,
            g,
            max_norm,
            &mut adam,
            hp.params_mut(),
        );
        assert_params_close(step, want.params(), hp.params());
    }
    assert_eq!(adam.time, 3);
}

#[test]
fn critic_step_matches_burn_autodiff_clip_and_adam() {
    use super::critic::CriticTrainScratch;
    use super::optim::HostAdam;
    use burn::optim::{AdamConfig, GradientsParams};

    let cd = ComputeDevice::cpu();
    let ad = cd.autodiff();
    let (obs, act, n) = (3, 2, 50);
    let mut rng = rng::seeded(41);
    let mut critic = CriticConfig::new(obs, act, 24).init(&ad, &mut rng);
    for head in [&mut critic.q1, &mut critic.q2] {
        for l in &mut head.layers {
            let k = l.weight.val().dims()[1];
            let b: Vec<f32> = rng::normals(&mut rng, k).iter().map(|v| 0.3 * v).collect();
            l.bias = Some(Param::from_data(TensorData::new(b, [k]), &ad));
        }
    }
    let mut exported = Vec::new();
    block(crate::trainer::export_module(
        "critic",
        &critic,
        &mut exported,
    ))
    .unwrap();
    let mut hc = block(load::critic(&critic)).unwrap();
    let listed = hc.params();
    assert_eq!(exported.len(), listed.len());
    for (e, (shape, v)) in exported.iter().zip(&listed) {
        assert_eq!(&e.shape, shape, "{}", e.name);
        assert_eq!(&e.data[..], *v, "{}", e.name);
    }
    let s = rng::normals(&mut rng, n * obs);
    let a: Vec<f32> = rng::normals(&mut rng, n * act)
        .iter()
        .map(|v| v.tanh())
        .collect();
    let y: Vec<f32> = rng::normals(&mut rng, n).iter().map(|v| 3.0 * v).collect();
    let t =
        |v: &Vec<f32>, c: usize| Tensor::<2>::from_data(TensorData::new(v.clone(), [n, c]), &ad);
    let mut opt = AdamConfig::new().init();
    let mut adam = HostAdam::default();
    let mut ws = CriticTrainScratch::default();
    let mut bc = critic;
    for (step, max_norm) in [(0, 1e3f32), (1, 0.5), (2, 0.5)] {
        let (q1, q2) = bc.forward(t(&s, obs), t(&a, act));
        let loss = (q1 - t(&y, 1)).square().mean() + (q2 - t(&y, 1)).square().mean();
        let value = loss.clone().inner();
        let grads = GradientsParams::from_grads(loss.backward(), &bc);
        let c = block(crate::trainer::clip_global_norm(
            grads, &bc, max_norm, value,
        ))
        .unwrap();
        let (want_loss, want_norm) = (c.loss, c.norm);
        bc = opt.step(1e-2, bc, c.grads);

        let (got_loss, g) = hc.td_loss_and_grads(&s, &a, &y, &mut ws);
        let want = block(load::critic(&bc)).unwrap();
        host_step_matches(
            step,
            (want_loss, want_norm),
            got_loss,
            g,
            max_norm,
            &mut adam,
            hc.params_mut(),
        );
        assert_params_close(step, want.params(), hc.params());
    }
}

/// One host training step beside burn's (`want`: burn's loss and gradient norm before the clip):
/// the loss and the norm agree, then the host clips `grads` and takes its Adam step on `params`
/// (learning rate 1e-2, as the burn side).
#[allow(clippy::too_many_arguments)]
fn host_step_matches(
    step: usize,
    (want_loss, want_norm): (f32, f32),
    got_loss: f32,
    mut grads: Vec<Vec<f32>>,
    max_norm: f32,
    adam: &mut super::optim::HostAdam,
    params: Vec<&mut Vec<f32>>,
) {
    let got_norm = super::optim::global_norm(&grads);
    assert!(
        (want_loss - got_loss).abs() <= 1e-5 * (1.0 + want_loss),
        "step {step}: loss {want_loss} vs {got_loss}"
    );
    assert!(
        (want_norm - got_norm).abs() <= 1e-4 * (1.0 + want_norm),
        "step {step}: norm {want_norm} vs {got_norm}"
    );
    super::optim::clip(&mut grads, got_norm, max_norm);
    adam.step(params, &grads, 1e-2);
}

/// Every parameter of burn's module (`want`) equals the host's (`got`) to 1e-4.
fn assert_params_close(
    step: usize,
    want: Vec<(Vec<usize>, &[f32])>,
    got: Vec<(Vec<usize>, &[f32])>,
) {
    assert_eq!(want.len(), got.len(), "step {step}: parameter counts");
    for (i, ((_, w), (_, h))) in want.iter().zip(&got).enumerate() {
        assert_close(w, h, 1e-4, &format!("step {step} param {i}"));
    }
}
