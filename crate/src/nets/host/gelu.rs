//! GELU (tanh approximation) over plain `f32` slices, written so the compiler vectorises it.
//!
//! `gelu(z) = 0.5 z (1 + tanh(√(2/π)(z + 0.044715 z³))) = z · σ(2√(2/π)(z + 0.044715 z³))`,
//! evaluated as `z / (1 + exp(−u))` with a branch-free polynomial `exp` (range reduction
//! `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`, degree-6 Taylor polynomial of `e^r`, `2ⁿ` built from the
//! exponent bits): every operation is a lane-wise add, multiply, min/max, divide, integer add or
//! shift, so each loop below compiles to SIMD (SSE2 / AVX2 / AVX-512 natively, picked at run
//! time; SIMD128 in wasm). Relative error of [`exp`] < 3e-7 on its range; absolute error of
//! [`gelu`] against the `f64` formula < 2e-6·max(1, |z|) (both tested). No fused multiply-adds
//! are used, so every path gives bit-identical results.
//!
//! The fused kernels apply a per-column bias first (the Dense layer's bias) and either replace
//! the input (`h = gelu(z + b)`) or add to a residual (`h += gelu(z + b)`); rows are the leading
//! dimension, `bias.len()` columns each.

/// `e^x`, with `x` clamped to `[−87, 88]` (the result stays a normal `f32`).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in a high part exact in f32 and the remainder (Cody–Waite).
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding then subtracting 1.5·2²³ rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    // `k = ROUND + n` exactly, so `n` is also the difference of the bit patterns (integer ops,
    // which vectorise; a float→int `as` cast would not, because it saturates lane by lane).
    let k = x * LOG2E + ROUND;
    let n = k - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // 2ⁿ: biased exponent `n + 127` ∈ [1, 254] (from the clamp), zero mantissa.
    let scale = f32::from_bits(k.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    p * scale
}

/// GELU, tanh approximation, of one value.
#[inline(always)]
pub fn gelu(z: f32) -> f32 {
    const TWO_SQRT_2_OVER_PI: f32 = 2.0 * 0.797_884_6;
    let u = TWO_SQRT_2_OVER_PI * (z + 0.044715 * z * z * z);
    z / (1.0 + exp(-u))
}

#[inline(always)]
fn bias_gelu_generic(z: &mut [f32], bias: &[f32]) {
    for row in z.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v = gelu(*v + b);
        }
    }
}

#[inline(always)]
fn residual_gelu_generic(h: &mut [f32], z: &[f32], bias: &[f32]) {
    let w = bias.len();
    for (hr, zr) in h.chunks_exact_mut(w).zip(z.chunks_exact(w)) {
        for ((h, z), b) in hr.iter_mut().zip(zr).zip(bias) {
            *h += gelu(z + b);
        }
    }
}

/// The widest vector unit this CPU has among those the kernels are compiled for.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq)]
enum Simd {
    Baseline,
    Avx2,
    Avx512,
}

#[cfg(target_arch = "x86_64")]
fn simd() -> Simd {
    if std::arch::is_x86_feature_detected!("avx512f") {
        Simd::Avx512
    } else if std::arch::is_x86_feature_detected!("avx2") {
        Simd::Avx2
    } else {
        Simd::Baseline
    }
}

/// The generic kernels compiled again with a wider target feature (same operations, so the
/// same results).
#[cfg(target_arch = "x86_64")]
macro_rules! with_feature {
    ($feature:literal, $bias:ident, $residual:ident) => {
        #[target_feature(enable = $feature)]
        fn $bias(z: &mut [f32], bias: &[f32]) {
            bias_gelu_generic(z, bias)
        }

        #[target_feature(enable = $feature)]
        fn $residual(h: &mut [f32], z: &[f32], bias: &[f32]) {
            residual_gelu_generic(h, z, bias)
        }
    };
}

#[cfg(target_arch = "x86_64")]
with_feature!("avx2", bias_gelu_avx2, residual_gelu_avx2);
#[cfg(target_arch = "x86_64")]
with_feature!("avx512f", bias_gelu_avx512, residual_gelu_avx512);

/// `z[r, j] ← gelu(z[r, j] + bias[j])` for every row `r` of `z` (`[rows, bias.len()]`).
pub fn bias_gelu(z: &mut [f32], bias: &[f32]) {
    assert_eq!(
        z.len() % bias.len().max(1),
        0,
        "bias_gelu: z is not [rows, bias.len()]"
    );
    #[cfg(target_arch = "x86_64")]
    match simd() {
        // SAFETY: the CPU has the feature each kernel is compiled for (checked by `simd`).
        Simd::Avx512 => return unsafe { bias_gelu_avx512(z, bias) },
        Simd::Avx2 => return unsafe { bias_gelu_avx2(z, bias) },
        Simd::Baseline => {}
    }
    bias_gelu_generic(z, bias)
}

/// `h[r, j] ← h[r, j] + gelu(z[r, j] + bias[j])`; `h`, `z`: `[rows, bias.len()]`.
pub fn residual_gelu(h: &mut [f32], z: &[f32], bias: &[f32]) {
    assert_eq!(h.len(), z.len(), "residual_gelu: h and z differ in length");
    assert_eq!(
        h.len() % bias.len().max(1),
        0,
        "residual_gelu: h is not [rows, bias.len()]"
    );
    #[cfg(target_arch = "x86_64")]
    match simd() {
        // SAFETY: the CPU has the feature each kernel is compiled for (checked by `simd`).
        Simd::Avx512 => return unsafe { residual_gelu_avx512(h, z, bias) },
        Simd::Avx2 => return unsafe { residual_gelu_avx2(h, z, bias) },
        Simd::Baseline => {}
    }
    residual_gelu_generic(h, z, bias)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gelu_f64(z: f64) -> f64 {
        let c = (2.0 / std::f64::consts::PI).sqrt();
        0.5 * z * (1.0 + (c * (z + 0.044715 * z * z * z)).tanh())
    }

    /// A dense grid over `[lo, hi]`.
    fn grid(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f32 / n as f32)
    }

    #[test]
    fn exp_relative_error_is_below_3e_7() {
        let mut worst = 0.0f64;
        for x in grid(-87.0, 88.0, 400_000) {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 3e-7, "max rel. error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        // Clamped, finite and ordered at the ends.
        assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 1e-37);
        assert!(exp(1000.0).is_finite() && exp(1000.0) > 1e38);
    }

    #[test]
    fn gelu_absolute_error_against_f64() {
        let mut worst = 0.0f64;
        for z in grid(-30.0, 30.0, 600_000) {
            let want = gelu_f64(f64::from(z));
            let err = (f64::from(gelu(z)) - want).abs() / f64::from(z.abs()).max(1.0);
            worst = worst.max(err);
        }
        assert!(worst < 2e-6, "max scaled error {worst:e}");
        // Exact limits: far negative → 0, far positive → z, 0 → 0.
        assert_eq!(gelu(0.0), 0.0);
        assert!(gelu(-50.0).abs() < 1e-30);
        assert_eq!(gelu(50.0), 50.0);
        assert_eq!(gelu(1e30), 1e30);
    }

    #[test]
    fn kernels_apply_bias_per_column_and_residual() {
        let bias = [0.5, -1.0, 2.0];
        let z: Vec<f32> = (0..12).map(|i| i as f32 * 0.3 - 1.7).collect();
        let mut a = z.clone();
        bias_gelu(&mut a, &bias);
        let mut h = vec![1.0f32; 12];
        residual_gelu(&mut h, &z, &bias);
        for i in 0..12 {
            let want = gelu(z[i] + bias[i % 3]);
            assert_eq!(a[i], want);
            assert_eq!(h[i], 1.0 + want);
        }
        // The dispatched (possibly AVX2) path equals the scalar formula bit for bit.
        let mut long: Vec<f32> = grid(-8.0, 8.0, 1023).collect();
        let scalar: Vec<f32> = long.iter().map(|&v| gelu(v)).collect();
        bias_gelu(&mut long, &[0.0; 32]);
        assert_eq!(long, scalar);
    }
}
