//! Interpolation paths `x_t = alpha_t x1 + beta_t x0` between noise `x0 ~ N(0, I)` (t = 0) and
//! data `x1 ~ p1` (t = 1), with the time derivatives the flow velocity needs.
//!
//! | path | `alpha_t` | `beta_t` | notes |
//! |---|---|---|---|
//! | [`Path::Linear`] | `t` | `1 - t` | rectified-flow / RFM code default |
//! | [`Path::Vp`] | `sqrt(abar(1 - t))` | `sqrt(1 - abar(1 - t))` | VP diffusion, linear-beta schedule |
//!
//! ## VP convention
//!
//! Diffusion papers run a forward time `tau` from data (`tau = 0`) to noise (`tau = 1`). This
//! crate's `t` runs the other way (t = 1 is data), so `tau = 1 - t` and
//!
//! ```text
//! B(tau)      = beta_min tau + (beta_max - beta_min) tau^2 / 2      (beta_min = 0.1, beta_max = 20)
//! abar(tau)   = exp(-B(tau))
//! alpha_t     = exp(-B(1 - t) / 2)           alpha_dot = alpha_t * b(1 - t) / 2
//! beta_t      = sqrt(1 - exp(-B(1 - t)))     beta_dot  = -alpha_t alpha_dot / beta_t
//! ```
//!
//! with `b(tau) = beta_min + (beta_max - beta_min) tau` (the schedule's instantaneous rate).
//! At the clipped ends: `alpha(0.99) ≈ 0.999`, `beta(0.99) ≈ 0.045`; `alpha(0.01) ≈ 0.0072`,
//! `beta(0.01) ≈ 1.0`. `alpha^2 + beta^2 = 1` for every `t`.
//!
//! ## Clipping
//!
//! Every coefficient first clips `t` to `[T_MIN, T_MAX] = [0.01, 0.99]` (the RFM code's range:
//! `beta_t > 0` and `alpha_t > 0` keep `x1 = (x_t - beta_t x0) / alpha_t` and
//! `mu0 = (x_t - alpha_t mu1) / beta_t` finite). Outside that range the derivatives returned
//! are those of the unclipped formula at the clipped time, not zero.
//!
//! All arithmetic is `f64` internally; results are `f32`.

use serde::{Deserialize, Serialize};

/// Smallest time any coefficient is evaluated at.
pub const T_MIN: f32 = 0.01;
/// Largest time any coefficient is evaluated at.
pub const T_MAX: f32 = 0.99;
/// VP schedule: rate at the data end (`tau = 0`).
pub const VP_BETA_MIN: f64 = 0.1;
/// VP schedule: rate at the noise end (`tau = 1`).
pub const VP_BETA_MAX: f64 = 20.0;

/// An interpolation path between `N(0, I)` at `t = 0` and the data at `t = 1`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Path {
    /// `alpha = t`, `beta = 1 - t`.
    #[default]
    Linear,
    /// Variance-preserving diffusion path (see the module doc for the convention).
    Vp,
}

/// The path's coefficients at one time: `x_t = alpha x1 + beta x0`,
/// `d x_t / dt = alpha_dot x1 + beta_dot x0`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Coeffs {
    /// Weight of the data endpoint.
    pub alpha: f32,
    /// Weight of the noise endpoint.
    pub beta: f32,
    /// `d alpha / dt`.
    pub alpha_dot: f32,
    /// `d beta / dt`.
    pub beta_dot: f32,
}

/// Unknown path name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown path '{0}' (valid: linear, vp)")]
pub struct UnknownPath(pub String);

/// `t` clipped to `[T_MIN, T_MAX]`; NaN stays NaN (callers validate finiteness).
pub fn clip_t(t: f32) -> f32 {
    t.clamp(T_MIN, T_MAX)
}

impl Path {
    /// Every path, in display order.
    pub const ALL: [Path; 2] = [Path::Linear, Path::Vp];

    /// Stable name: `"linear"` or `"vp"`.
    pub fn name(&self) -> &'static str {
        match self {
            Path::Linear => "linear",
            Path::Vp => "vp",
        }
    }

    /// Parse a stable name (`"linear"`, `"vp"`).
    pub fn from_name(name: &str) -> Result<Self, UnknownPath> {
        match name.trim().to_ascii_lowercase().as_str() {
            "linear" => Ok(Path::Linear),
            "vp" => Ok(Path::Vp),
            _ => Err(UnknownPath(name.to_string())),
        }
    }

    /// `alpha, beta, alpha_dot, beta_dot` at `t` (clipped to `[T_MIN, T_MAX]`).
    pub fn coeffs(&self, t: f32) -> Coeffs {
        let (a, b, ad, bd) = self.coeffs_f64(clip_t(t) as f64);
        Coeffs {
            alpha: a as f32,
            beta: b as f32,
            alpha_dot: ad as f32,
            beta_dot: bd as f32,
        }
    }

    /// The unclipped formulas in `f64`: `(alpha, beta, alpha_dot, beta_dot)`.
    pub(crate) fn coeffs_f64(&self, t: f64) -> (f64, f64, f64, f64) {
        match self {
            Path::Linear => (t, 1.0 - t, 1.0, -1.0),
            Path::Vp => {
                let tau = 1.0 - t;
                let big_b = VP_BETA_MIN * tau + 0.5 * (VP_BETA_MAX - VP_BETA_MIN) * tau * tau;
                let rate = VP_BETA_MIN + (VP_BETA_MAX - VP_BETA_MIN) * tau;
                let alpha = (-0.5 * big_b).exp();
                // 1 - exp(-B) without cancellation near the data end.
                let beta = (-(-big_b).exp_m1()).sqrt();
                let alpha_dot = 0.5 * rate * alpha;
                let beta_dot = -alpha * alpha_dot / beta;
                (alpha, beta, alpha_dot, beta_dot)
            }
        }
    }

    /// `alpha_t`.
    pub fn alpha(&self, t: f32) -> f32 {
        self.coeffs(t).alpha
    }

    /// `beta_t`.
    pub fn beta(&self, t: f32) -> f32 {
        self.coeffs(t).beta
    }

    /// `d alpha / dt`.
    pub fn alpha_dot(&self, t: f32) -> f32 {
        self.coeffs(t).alpha_dot
    }

    /// `d beta / dt`.
    pub fn beta_dot(&self, t: f32) -> f32 {
        self.coeffs(t).beta_dot
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Path {
    type Err = UnknownPath;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Path::from_name(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of the f64 formulas match the analytic derivatives.
    #[test]
    fn derivatives_match_finite_differences() {
        let h = 1e-6;
        for path in Path::ALL {
            for i in 1..=49 {
                let t = 0.02 * i as f64;
                let (_, _, ad, bd) = path.coeffs_f64(t);
                let (ap, bp, _, _) = path.coeffs_f64(t + h);
                let (am, bm, _, _) = path.coeffs_f64(t - h);
                let fd_a = (ap - am) / (2.0 * h);
                let fd_b = (bp - bm) / (2.0 * h);
                let tol = |x: f64| 1e-5 * (1.0 + x.abs());
                assert!(
                    (fd_a - ad).abs() < tol(ad),
                    "{path} t={t}: alpha_dot {ad} vs fd {fd_a}"
                );
                assert!(
                    (fd_b - bd).abs() < tol(bd),
                    "{path} t={t}: beta_dot {bd} vs fd {fd_b}"
                );
            }
        }
    }

    #[test]
    fn public_f32_coeffs_match_finite_differences() {
        let h = 1e-3_f32;
        for path in Path::ALL {
            for t in [0.1_f32, 0.3, 0.5, 0.7, 0.9] {
                let c = path.coeffs(t);
                let fd_a = (path.alpha(t + h) - path.alpha(t - h)) / (2.0 * h);
                let fd_b = (path.beta(t + h) - path.beta(t - h)) / (2.0 * h);
                assert!((fd_a - c.alpha_dot).abs() < 2e-2 * (1.0 + c.alpha_dot.abs()));
                assert!((fd_b - c.beta_dot).abs() < 2e-2 * (1.0 + c.beta_dot.abs()));
            }
        }
    }

    #[test]
    fn endpoints_and_conventions() {
        let lin = Path::Linear.coeffs(0.3);
        assert_eq!(
            (lin.alpha, lin.beta, lin.alpha_dot, lin.beta_dot),
            (0.3, 0.7, 1.0, -1.0)
        );
        // Clipping.
        assert_eq!(Path::Linear.alpha(0.0), T_MIN);
        assert_eq!(Path::Linear.alpha(1.0), T_MAX);
        // VP: t = 1 is data, variance preserving everywhere.
        let hi = Path::Vp.coeffs(1.0);
        assert!(hi.alpha > 0.998 && hi.beta < 0.05, "{hi:?}");
        let lo = Path::Vp.coeffs(0.0);
        assert!(lo.alpha < 0.01 && lo.beta > 0.999, "{lo:?}");
        for i in 0..=100 {
            let c = Path::Vp.coeffs(i as f32 / 100.0);
            assert!((c.alpha * c.alpha + c.beta * c.beta - 1.0).abs() < 1e-5);
            assert!(c.alpha_dot > 0.0 && c.beta_dot < 0.0);
        }
    }

    #[test]
    fn names_round_trip_and_unknown_is_an_error() {
        for p in Path::ALL {
            assert_eq!(Path::from_name(p.name()), Ok(p));
        }
        let e = Path::from_name("ve").unwrap_err();
        assert!(e.to_string().contains("linear, vp"), "{e}");
    }
}
