//! The browser-vs-native parity cases (shared by `tests/native_parity.rs`, which records the
//! native numbers in `tests/parity/native.json`, and `tests/web.rs`, which checks the wasm
//! module's numbers against that file within a tolerance: the wasm kernels round differently
//! from native AVX-512 ones, and the relaxed-SIMD module fuses multiply-adds).

use rfm_playground::device::ComputeDevice;
use rfm_playground::session::Session;
use rfm_playground::spec::{ExperimentSpec, Mode};

/// Relative tolerance of a wasm figure against the native one (plus `ABS` absolute).
pub const REL: f64 = 2e-3;
pub const ABS: f64 = 1e-5;

/// `(name, spec, steps)`: a sampler run and an RL run just past its warm-up, small enough for
/// the browser test.
pub fn cases() -> Vec<(&'static str, ExperimentSpec, usize)> {
    let sampler = ExperimentSpec {
        mode: Mode::Sampler,
        lambda: 1.0,
        k: 8,
        batch: 32,
        ..Default::default()
    };
    let rl = ExperimentSpec {
        k: 8,
        batch: 16,
        ..Default::default()
    };
    let warmup = rl.warmup;
    vec![("sampler", sampler, 12), ("rl", rl, warmup + 6)]
}

/// The losses (and ESS) at every step that updated, on `device`: `[step, critic loss, actor
/// loss, ess]` (NaN where a figure is absent). Natively and in the CPU modules on the CPU; the
/// WebGPU module's test runs it on WebGPU.
pub async fn trace_on(spec: &ExperimentSpec, steps: usize, device: ComputeDevice) -> Vec<[f64; 4]> {
    let mut s = Session::new(spec.clone(), device).expect("session");
    let b = s.step(steps).await;
    assert_eq!(b.fault, None);
    let f = |v: Option<f32>| v.map_or(f64::NAN, f64::from);
    b.points
        .iter()
        .filter(|p| p.actor_loss.is_some())
        .map(|p| [p.step as f64, f(p.critic_loss), f(p.actor_loss), f(p.ess)])
        .collect()
}

/// Where `got` differs from `want` by more than the tolerance, in words.
pub fn differences(name: &str, want: &[[f64; 4]], got: &[[f64; 4]]) -> Vec<String> {
    let mut out = Vec::new();
    if want.len() != got.len() {
        out.push(format!(
            "{name}: {} update points, native has {}",
            got.len(),
            want.len()
        ));
        return out;
    }
    for (w, g) in want.iter().zip(got) {
        for (i, label) in ["step", "critic loss", "actor loss", "ess"]
            .iter()
            .enumerate()
        {
            let (a, b) = (w[i], g[i]);
            let same = (a.is_nan() && b.is_nan()) || (a - b).abs() <= ABS + REL * a.abs();
            if !same {
                out.push(format!("{name} step {}: {label} {b} (native {a})", w[0]));
            }
        }
    }
    out
}
