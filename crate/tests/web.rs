//! wasm tests in headless Chromium: the probe trains on flex and on WebGPU (SwiftShader).
//! The WebGPU test fails loudly when WebGPU is unavailable; it never falls back. Deterministic
//! replay: two playground sessions with the same seed and config give bit-identical metrics
//! on flex (the CPU backend) in the browser too.
#![cfg(target_arch = "wasm32")]

use rfm_playground::device::{BackendChoice, BackendKind, ComputeDevice};
use rfm_playground::probe::{ProbeConfig, run_probe};
use rfm_playground::spec::{ExperimentSpec, Mode};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn cfg() -> ProbeConfig {
    ProbeConfig {
        steps: 30,
        ..Default::default()
    }
}

/// The host kernels' products run gemm's SIMD128 microkernels in the browser, not its scalar
/// fallback (which gemm picks unless its `wasm-simd128-enable` feature is on).
#[wasm_bindgen_test]
fn gemm_uses_its_simd128_kernels() {
    assert!(cfg!(target_feature = "simd128"), "built without +simd128");
    assert!(
        gemm::get_wasm_simd128(),
        "gemm would run its scalar kernels (feature wasm-simd128-enable is off)"
    );
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
    let sampler = ExperimentSpec {
        mode: Mode::Sampler,
        lambda: 1.0,
        k: 8,
        batch: 32,
        ..Default::default()
    };
    // RL: past the warm-up, so critic and actor updates (and ESS) are compared too.
    let rl = ExperimentSpec {
        k: 8,
        batch: 16,
        ..Default::default()
    };
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
