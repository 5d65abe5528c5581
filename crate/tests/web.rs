//! wasm tests in headless Chromium: the probe trains on flex and on WebGPU (SwiftShader).
//! The WebGPU test fails loudly when WebGPU is unavailable; it never falls back.
#![cfg(target_arch = "wasm32")]

use rfm_playground::device::{BackendChoice, BackendKind, ComputeDevice};
use rfm_playground::probe::{ProbeConfig, run_probe};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn cfg() -> ProbeConfig {
    ProbeConfig {
        steps: 30,
        ..Default::default()
    }
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
