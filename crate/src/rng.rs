//! Explicit, seeded randomness. Every random draw in the crate comes from a [`Rng`] that a
//! caller created from a `u64` seed, so the same seed gives the same numbers natively and in
//! wasm (ChaCha8 is platform independent).

use rand::SeedableRng;
pub use rand::{Rng as _, RngCore};
use rand_distr::{Distribution, StandardNormal};

/// The crate's RNG: ChaCha8, seeded explicitly.
pub type Rng = rand_chacha::ChaCha8Rng;

/// A new RNG from a seed.
pub fn seeded(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// One standard normal draw as `f32`.
pub fn normal(rng: &mut Rng) -> f32 {
    StandardNormal.sample(rng)
}

/// Fill `out` with standard normal draws.
pub fn fill_normal(rng: &mut Rng, out: &mut [f32]) {
    for x in out {
        *x = StandardNormal.sample(rng);
    }
}

/// `n` standard normal draws.
pub fn normals(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut v = vec![0.0; n];
    fill_normal(rng, &mut v);
    v
}

/// One uniform draw in `[lo, hi)`.
pub fn uniform(rng: &mut Rng, lo: f32, hi: f32) -> f32 {
    use rand::Rng as _;
    rng.random_range(lo..hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let a = normals(&mut seeded(7), 16);
        let b = normals(&mut seeded(7), 16);
        assert_eq!(a, b);
        let c = normals(&mut seeded(8), 16);
        assert_ne!(a, c);
    }

    #[test]
    fn normal_moments() {
        let v = normals(&mut seeded(1), 200_000);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        // Standard error of the mean is 1/sqrt(n) ≈ 0.0022.
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }
}
