//! wasm tests in headless Chromium: the probe trains on flex and on WebGPU (SwiftShader).
//! The WebGPU test fails loudly when WebGPU is unavailable; it never falls back. Deterministic
//! replay: two playground sessions with the same seed and config give bit-identical metrics
//! on flex (the CPU backend) in the browser too.
#![cfg(target_arch = "wasm32")]

mod parity;

use rfm_playground::device::{BackendChoice, BackendKind, ComputeDevice};
use rfm_playground::probe::{ProbeConfig, run_probe};
use rfm_playground::spec::ExperimentSpec;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn cfg() -> ProbeConfig {
    ProbeConfig {
        steps: 30,
        ..Default::default()
    }
}

/// burn's CPU backend (flex) runs gemm's SIMD128 microkernels in the browser, not its scalar
/// fallback (which gemm picks unless its `wasm-simd128-enable` feature is on).
#[wasm_bindgen_test]
fn gemm_uses_its_simd128_kernels() {
    assert!(cfg!(target_feature = "simd128"), "built without +simd128");
    assert!(
        gemm::get_wasm_simd128(),
        "gemm would run its scalar kernels (feature wasm-simd128-enable is off)"
    );
}

/// The host nets' three products (`x·W`, `x·Wᵀ`, `Aᵀ·B`) on wasm's own kernels (plain or
/// relaxed SIMD, whichever this module is) against the definition in f64, over shapes that hit
/// every block and tail of the kernels, with and without accumulation.
#[wasm_bindgen_test]
fn host_products_match_the_definition() {
    use rfm_playground::nets::host::dense::{matmul, matmul_at, matmul_bt};
    let value = |i: usize, salt: usize| ((i * 7919 + salt * 104729) % 2003) as f32 / 1001.5 - 1.0;
    let check = |what: &str, got: &[f32], want: &[f64], k: usize| {
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let tol = 1e-5 * (k as f64).sqrt() * (1.0 + w.abs());
            assert!(
                (g as f64 - w).abs() <= tol,
                "{what}: element {i}: {g} vs {w}"
            );
        }
    };
    for &m in &[1usize, 3, 4, 5, 9, 130] {
        for &k in &[1usize, 2, 5, 64] {
            for &n in &[1usize, 2, 3, 4, 5, 8, 9, 13, 64, 67] {
                let x: Vec<f32> = (0..m * k).map(|i| value(i, 1)).collect();
                let w: Vec<f32> = (0..k * n).map(|i| value(i, 2)).collect();
                let base: Vec<f32> = (0..m * n).map(|i| value(i, 3)).collect();
                let shape = format!("m={m} k={k} n={n}");
                // x·W, then x·W accumulated onto `base`.
                let xw: Vec<f64> = (0..m * n)
                    .map(|o| {
                        (0..k)
                            .map(|p| x[o / n * k + p] as f64 * w[p * n + o % n] as f64)
                            .sum()
                    })
                    .collect();
                let mut out = vec![f32::NAN; m * n];
                matmul(&x, &w, &mut out, k, n, false);
                check(&format!("x·W {shape}"), &out, &xw, k);
                let mut out = base.clone();
                matmul(&x, &w, &mut out, k, n, true);
                let acc: Vec<f64> = xw.iter().zip(&base).map(|(a, &b)| a + b as f64).collect();
                check(&format!("out + x·W {shape}"), &out, &acc, k);
                // x·Vᵀ with V = `w` read as [n, k].
                let xvt: Vec<f64> = (0..m * n)
                    .map(|o| {
                        (0..k)
                            .map(|p| x[o / n * k + p] as f64 * w[(o % n) * k + p] as f64)
                            .sum()
                    })
                    .collect();
                let mut out = vec![f32::NAN; m * n];
                matmul_bt(&x, &w, &mut out, k, n, false);
                check(&format!("x·Wᵀ {shape}"), &out, &xvt, k);
                // Aᵀ·B with A = `x` as [m rows of k] → [k, n] from B = [m, n].
                let at_b: Vec<f64> = (0..k * n)
                    .map(|o| {
                        (0..m)
                            .map(|r| x[r * k + o / n] as f64 * base[r * n + o % n] as f64)
                            .sum()
                    })
                    .collect();
                let mut out = vec![f32::NAN; k * n];
                matmul_at(&x, &base, &mut out, k, n);
                check(&format!("Aᵀ·B {shape}"), &out, &at_b, m);
            }
        }
    }
}

/// This module's training numbers agree with native (AVX-512 gemm) within a tolerance: a
/// sampler run and an RL run past its warm-up, against `tests/parity/native.json`.
#[wasm_bindgen_test]
async fn training_matches_native_within_tolerance() {
    let diffs = differences_from_native(ComputeDevice::cpu()).await;
    web_sys::console::log_1(
        &format!("module: relaxed SIMD {}", cfg!(feature = "relaxed-simd")).into(),
    );
    assert!(diffs.is_empty(), "{}", diffs.join("; "));
}

/// On WebGPU (the fused sampler and Adam, burn's kernels for the rest of the steps) the same
/// training numbers as native within the same tolerance.
#[cfg(feature = "webgpu")]
#[wasm_bindgen_test]
async fn webgpu_training_matches_native_within_tolerance() {
    let device = ComputeDevice::webgpu()
        .await
        .expect("WebGPU must be available in this test (Chromium with --enable-unsafe-webgpu)");
    let diffs = differences_from_native(device).await;
    assert!(diffs.is_empty(), "{}", diffs.join("; "));
}

/// The parity cases on `device` against the recorded native numbers, in words.
async fn differences_from_native(device: ComputeDevice) -> Vec<String> {
    let recorded: std::collections::BTreeMap<String, Vec<[Option<f64>; 4]>> =
        serde_json::from_str(include_str!("parity/native.json")).expect("tests/parity/native.json");
    let mut diffs = Vec::new();
    for (name, spec, steps) in parity::cases() {
        let want: Vec<[f64; 4]> = recorded[name]
            .iter()
            .map(|r| r.map(|x| x.unwrap_or(f64::NAN)))
            .collect();
        let got = parity::trace_on(&spec, steps, device.clone()).await;
        diffs.extend(parity::differences(name, &want, &got));
    }
    diffs
}

/// The CPU-only module (the page's default download) carries no WebGPU runtime and says so.
#[cfg(not(feature = "webgpu"))]
#[wasm_bindgen_test]
async fn cpu_module_refuses_webgpu_and_auto_uses_the_cpu() {
    assert!(!rfm_playground::device::HAS_WEBGPU);
    let e = ComputeDevice::select(BackendChoice::Webgpu)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("CPU-only module"), "{e}");
    let d = ComputeDevice::select(BackendChoice::Auto).await.unwrap();
    assert_eq!(d.kind(), BackendKind::Cpu);
}

#[wasm_bindgen_test]
async fn probe_loss_falls_on_flex_in_wasm() {
    let d = ComputeDevice::cpu();
    let r = run_probe(&d, &cfg()).await.expect("probe on flex");
    assert!(
        r.final_loss < 0.5 * r.initial_loss,
        "flex: {} -> {}",
        r.initial_loss,
        r.final_loss
    );
}

#[cfg(feature = "webgpu")]
#[wasm_bindgen_test]
async fn probe_loss_falls_on_webgpu() {
    let d = ComputeDevice::select(BackendChoice::Webgpu)
        .await
        .expect("WebGPU must be available in this test (Chromium with --enable-unsafe-webgpu)");
    assert_eq!(d.kind(), BackendKind::Webgpu);
    web_sys::console::log_1(&format!("adapter: {}", d.info().adapter).into());
    let r = run_probe(&d, &cfg()).await.expect("probe on WebGPU");
    assert!(
        r.final_loss < 0.5 * r.initial_loss,
        "webgpu: {} -> {}",
        r.initial_loss,
        r.final_loss
    );
}

#[wasm_bindgen_test]
async fn flex_is_deterministic_in_wasm() {
    let d = ComputeDevice::cpu();
    let a = run_probe(&d, &cfg()).await.unwrap();
    let b = run_probe(&d, &cfg()).await.unwrap();
    assert_eq!(a.losses, b.losses);
}

/// Every metric of `n` steps of a fresh session, as bits (absent = u64::MAX).
async fn replay(cfg: &ExperimentSpec, n: usize) -> Vec<[u64; 6]> {
    use rfm_playground::session::Session;
    let mut s = Session::new(cfg.clone(), ComputeDevice::cpu()).expect("session");
    let b = s.step(n).await;
    assert_eq!(b.fault, None);
    let f = |v: Option<f32>| v.map_or(u64::MAX, |x| x.to_bits() as u64);
    let d = |v: Option<f64>| v.map_or(u64::MAX, f64::to_bits);
    b.points
        .iter()
        .map(|p| {
            [
                p.step as u64,
                d(p.episode_return),
                d(p.eval_return),
                f(p.critic_loss),
                f(p.actor_loss),
                f(p.ess),
            ]
        })
        .collect()
}

#[wasm_bindgen_test]
async fn same_seed_and_config_replay_bit_for_bit_on_flex_in_wasm() {
    // The parity cases' specs; RL past the warm-up, so critic and actor updates (and ESS) are
    // compared too.
    let specs: Vec<ExperimentSpec> = parity::cases().into_iter().map(|(_, s, _)| s).collect();
    let (sampler, rl) = (specs[0].clone(), specs[1].clone());
    for (cfg, n) in [(sampler, 20), (rl, 1015)] {
        let a = replay(&cfg, n).await;
        let b = replay(&cfg, n).await;
        assert!(
            a.iter().any(|p| p[4] != u64::MAX),
            "{:?}: no updates",
            cfg.mode
        );
        assert_eq!(a, b, "{:?}", cfg.mode);
    }
}
