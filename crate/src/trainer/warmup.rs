//! The warm-up's actions: what the agent does before its first update, while the replay buffer
//! fills.
//!
//! - [`WarmupNoise::Uniform`] (default): each action coordinate drawn uniformly from [−1, 1] at
//!   every step, as Gymnasium's `action_space.sample()` in the released code.
//! - [`WarmupNoise::Pink`]: temporally correlated noise with a ≈ 1/f spectrum, the sum of
//!   [`PINK_TIME_CONSTANTS`]`.len()` unit-variance AR(1) processes with time constants
//!   1, 4, 16, 64 and 256 steps (log-spaced AR(1) processes of equal variance sum to a 1/f
//!   spectrum between the shortest and longest time constant), scaled to unit variance and clipped
//!   to [−1, 1]. Colored noise of this kind is what solves sparse-reward tasks that need a
//!   sustained push, such as `MountainCarContinuous-v0` (Eberhard et al., "Pink noise is all
//!   you need", ICLR 2023): the car swings up only when the push keeps its sign for tens of
//!   steps, which independent uniform draws never do (docs/rl.md, "Mountain car").
//!
//! The processes restart from their stationary distribution at each episode's start, so
//! episodes are independent and a run repeats exactly for a seed.

use serde::{Deserialize, Serialize};

use crate::rng::{self, Rng};

/// The warm-up's action noise (spec field `warmupNoise`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum WarmupNoise {
    /// Independent uniform draws in [−1, 1] (the released code).
    #[default]
    Uniform,
    /// Temporally correlated (≈ 1/f) noise, see the module docs.
    Pink,
}

impl WarmupNoise {
    pub const ALL: [WarmupNoise; 2] = [WarmupNoise::Uniform, WarmupNoise::Pink];
}

/// Time constants (env steps) of the AR(1) processes whose sum is the pink noise.
pub const PINK_TIME_CONSTANTS: [f32; 5] = [1.0, 4.0, 16.0, 64.0, 256.0];

/// The warm-up's action source for an `act_dim`-dimensional action.
#[derive(Clone, Debug)]
pub struct WarmupActions {
    noise: WarmupNoise,
    act_dim: usize,
    /// Pink: the AR(1) states, `act_dim × PINK_TIME_CONSTANTS.len()`, row-major by coordinate;
    /// empty until the first action of an episode.
    state: Vec<f32>,
}

impl WarmupActions {
    pub fn new(noise: WarmupNoise, act_dim: usize) -> Self {
        Self {
            noise,
            act_dim,
            state: Vec::new(),
        }
    }

    /// A new episode starts: the correlated processes restart (from their stationary law).
    pub fn episode_start(&mut self) {
        self.state.clear();
    }

    /// The next action, every coordinate in [−1, 1].
    pub fn next(&mut self, rng: &mut Rng) -> Vec<f32> {
        match self.noise {
            WarmupNoise::Uniform => (0..self.act_dim)
                .map(|_| rng::uniform(rng, -1.0, 1.0))
                .collect(),
            WarmupNoise::Pink => self.next_pink(rng),
        }
    }

    fn next_pink(&mut self, rng: &mut Rng) -> Vec<f32> {
        let n = PINK_TIME_CONSTANTS.len();
        if self.state.is_empty() {
            // Stationary start: each process is N(0, 1) at every step.
            self.state = rng::normals(rng, self.act_dim * n);
        } else {
            for (i, x) in self.state.iter_mut().enumerate() {
                let a = (-1.0 / PINK_TIME_CONSTANTS[i % n]).exp();
                *x = a * *x + (1.0 - a * a).sqrt() * rng::normal(rng);
            }
        }
        let scale = 1.0 / (n as f32).sqrt();
        self.state
            .chunks(n)
            .map(|c| (c.iter().sum::<f32>() * scale).clamp(-1.0, 1.0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean, variance and lag-`lag` autocorrelation of one coordinate over `steps` actions of
    /// one long episode, before the clip (the clip is checked separately).
    fn pink_stats(steps: usize, lag: usize) -> (f64, f64, f64) {
        let mut w = WarmupActions::new(WarmupNoise::Pink, 1);
        let mut rng = rng::seeded(3);
        // Unclipped values: read the state's scaled sum directly.
        let n = PINK_TIME_CONSTANTS.len() as f32;
        let xs: Vec<f64> = (0..steps)
            .map(|_| {
                w.next(&mut rng);
                (w.state.iter().sum::<f32>() / n.sqrt()) as f64
            })
            .collect();
        let m = xs.iter().sum::<f64>() / steps as f64;
        let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / steps as f64;
        let cov = xs
            .windows(lag + 1)
            .map(|p| (p[0] - m) * (p[lag] - m))
            .sum::<f64>()
            / (steps - lag) as f64;
        (m, var, cov / var)
    }

    #[test]
    fn pink_noise_has_unit_variance_and_the_sum_of_ar1_autocorrelations() {
        // The autocorrelation of the scaled sum at lag L is the mean of exp(-L/τ) over the time
        // constants; 200k steps put the estimates within a few hundredths of it.
        let (m, var, _) = pink_stats(200_000, 1);
        assert!(m.abs() < 0.1, "mean {m}");
        assert!((var - 1.0).abs() < 0.1, "variance {var}");
        for lag in [1usize, 10, 50] {
            let want = PINK_TIME_CONSTANTS
                .iter()
                .map(|t| (-(lag as f64) / *t as f64).exp())
                .sum::<f64>()
                / PINK_TIME_CONSTANTS.len() as f64;
            let (_, _, rho) = pink_stats(200_000, lag);
            assert!((rho - want).abs() < 0.05, "lag {lag}: {rho} vs {want}");
        }
    }

    #[test]
    fn actions_stay_in_the_box_and_repeat_for_a_seed() {
        for noise in WarmupNoise::ALL {
            let run = || {
                let mut w = WarmupActions::new(noise, 2);
                let mut rng = rng::seeded(7);
                let mut out = Vec::new();
                for t in 0..500 {
                    if t % 200 == 0 {
                        w.episode_start();
                    }
                    out.extend(w.next(&mut rng));
                }
                out
            };
            let a = run();
            assert_eq!(a.len(), 1000);
            assert!(a.iter().all(|x| (-1.0..=1.0).contains(x)), "{noise:?}");
            assert_eq!(a, run(), "{noise:?} repeats for a seed");
        }
    }

    #[test]
    fn pink_pushes_keep_their_sign_uniform_ones_do_not() {
        // Mean run length of equal signs: 2 for independent symmetric draws; far longer for pink.
        let mean_run = |noise| {
            let mut w = WarmupActions::new(noise, 1);
            let mut rng = rng::seeded(11);
            let s: Vec<bool> = (0..20_000).map(|_| w.next(&mut rng)[0] > 0.0).collect();
            let changes = s.windows(2).filter(|p| p[0] != p[1]).count();
            s.len() as f64 / (changes + 1) as f64
        };
        let u = mean_run(WarmupNoise::Uniform);
        let p = mean_run(WarmupNoise::Pink);
        assert!((1.8..2.2).contains(&u), "uniform {u}");
        assert!(p > 5.0, "pink {p}");
    }

    /// Gymnasium's `MountainCarContinuous-v0` (this crate's exact port): from the reset states,
    /// independent uniform pushes never reach the flag within the 999-step limit, while pink
    /// pushes do in most episodes (a NumPy simulation of the same dynamics: 0 of 200 and 147 of
    /// 200).
    #[test]
    fn pink_warm_up_reaches_the_mountain_car_flag_uniform_does_not() {
        use crate::envs::{EnvName, make_env};
        let reached = |noise| {
            let mut env = make_env(EnvName::MountainCar, 5);
            let mut w = WarmupActions::new(noise, 1);
            let mut rng = rng::seeded(5);
            let mut hits = 0;
            for ep in 0..40u64 {
                env.reset(Some(100 + ep));
                w.episode_start();
                loop {
                    let r = env.step(&w.next(&mut rng));
                    if r.terminated {
                        hits += 1;
                    }
                    if r.terminated || r.truncated {
                        break;
                    }
                }
            }
            hits
        };
        assert_eq!(reached(WarmupNoise::Uniform), 0);
        let pink = reached(WarmupNoise::Pink);
        assert!(pink >= 16, "pink reached the flag in {pink} of 40 episodes");
    }
}
