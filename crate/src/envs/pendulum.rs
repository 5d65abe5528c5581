//! Gymnasium `Pendulum-v1`, transcribed line by line from
//! `gymnasium/envs/classic_control/pendulum.py` (Farama-Foundation/Gymnasium).
//!
//! The inverted pendulum swing-up: a pendulum hangs from a fixed point, and torque on it must
//! swing it upright (θ = 0) and keep it there.
//!
//! ## Action space (native units; the agent's `[-1, 1]` maps linearly onto it)
//!
//! | index | action | min | max |
//! |---|---|---|---|
//! | 0 | torque `u` (N m, counter-clockwise positive) | -2.0 | 2.0 |
//!
//! ## Observation space
//!
//! | index | observation | min | max |
//! |---|---|---|---|
//! | 0 | `cos θ` | -1.0 | 1.0 |
//! | 1 | `sin θ` | -1.0 | 1.0 |
//! | 2 | angular velocity `θdot` | -8.0 | 8.0 |
//!
//! ## Dynamics (`g = 10.0`, `m = 1.0`, `l = 1.0`, `dt = 0.05`, `max_speed = 8`, `max_torque = 2.0`)
//!
//! ```text
//! u        = clip(u, -max_torque, max_torque)
//! cost     = angle_normalize(θ)² + 0.1 θdot² + 0.001 u²          (state BEFORE the update)
//! newθdot  = θdot + (3g / (2l) · sin θ + 3 / (m l²) · u) · dt
//! newθdot  = clip(newθdot, -max_speed, max_speed)
//! newθ     = θ + newθdot · dt                                       (θ itself is never wrapped)
//! ```
//!
//! with `angle_normalize(x) = ((x + π) mod 2π) − π` (Python's `%`, result in `[0, 2π)`).
//!
//! ## Reward
//!
//! `r = −cost`, in `[−16.2736044, 0]` for states inside the observation bounds.
//!
//! ## Starting state
//!
//! `θ ~ U[−π, π)`, `θdot ~ U[−1, 1)` (`f64` draws from the env's RNG).
//!
//! ## Termination and truncation
//!
//! Never terminated. Truncated at 200 steps (Gymnasium's registered `TimeLimit`).
//!
//! ## Numerics
//!
//! State and arithmetic are `f64`, matching Gymnasium fed `float64` actions (with `float32`
//! actions NumPy 2 evaluates the `u` terms in `float32`, a difference below 1e-7).
//! Observations are cast to `f32`, as Gymnasium's `_get_obs` does.

use std::f64::consts::PI;

use rand::Rng as _;
use serde::Serialize;

use super::{Env, EnvError, EnvName, EnvSnapshot, EnvSpec, StepResult};
use crate::rng::{Rng, seeded};

/// Gravity, m s⁻² (Gymnasium's default `g`).
pub const G: f64 = 10.0;
/// Mass, kg.
pub const M: f64 = 1.0;
/// Length, m.
pub const L: f64 = 1.0;
/// Integration step, s.
pub const DT: f64 = 0.05;
/// Angular velocity bound, rad/s.
pub const MAX_SPEED: f64 = 8.0;
/// Torque bound, N m.
pub const MAX_TORQUE: f64 = 2.0;
/// Time limit, steps.
pub const MAX_STEPS: usize = 200;

/// `((x + π) mod 2π) − π` with Python's floor-mod, so the result lies in `[−π, π)`.
pub fn angle_normalize(x: f64) -> f64 {
    (x + PI).rem_euclid(2.0 * PI) - PI
}

/// The pendulum: state `[θ, θdot]`.
#[derive(Debug, Clone)]
pub struct Pendulum {
    spec: EnvSpec,
    rng: Rng,
    theta: f64,
    theta_dot: f64,
    /// Torque applied by the last step (after clipping), for drawing; `None` after a reset.
    last_u: Option<f64>,
    steps: usize,
}

/// What the UI draws: the angle (0 = upright, counter-clockwise positive), the last torque.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct PendulumSnapshot {
    /// θ in radians, unwrapped.
    pub theta: f64,
    /// θdot in rad/s.
    pub theta_dot: f64,
    /// Last applied torque in N m (clipped), `null` right after a reset.
    pub last_u: Option<f64>,
    pub max_torque: f64,
    /// Rod length in m.
    pub length: f64,
    /// Steps taken in this episode.
    pub step: usize,
}

impl Pendulum {
    /// A pendulum with its RNG seeded by `seed`, reset once.
    pub fn new(seed: u64) -> Self {
        let mut env = Pendulum {
            spec: EnvSpec {
                name: EnvName::Pendulum,
                obs_dim: 3,
                act_dim: 1,
                act_low: vec![-MAX_TORQUE],
                act_high: vec![MAX_TORQUE],
                max_steps: MAX_STEPS,
                state_dim: 2,
                state_names: vec!["theta", "thetaDot"],
            },
            rng: seeded(seed),
            theta: 0.0,
            theta_dot: 0.0,
            last_u: None,
            steps: 0,
        };
        env.reset(Some(seed));
        env
    }

    /// Gymnasium's `_get_obs`: `[cos θ, sin θ, θdot]` as `f32`.
    fn get_obs(&self) -> Vec<f32> {
        vec![
            self.theta.cos() as f32,
            self.theta.sin() as f32,
            self.theta_dot as f32,
        ]
    }
}

impl Env for Pendulum {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>) -> Vec<f32> {
        if let Some(seed) = seed {
            self.rng = seeded(seed);
        }
        self.theta = self.rng.random_range(-PI..PI);
        self.theta_dot = self.rng.random_range(-1.0..1.0);
        self.last_u = None;
        self.steps = 0;
        self.get_obs()
    }

    fn step_native(&mut self, action: &[f64]) -> StepResult {
        self.spec.check_action_len(action.len());
        let (th, thdot) = (self.theta, self.theta_dot);

        let u = action[0].clamp(-MAX_TORQUE, MAX_TORQUE);
        self.last_u = Some(u);
        let costs = angle_normalize(th).powi(2) + 0.1 * thdot.powi(2) + 0.001 * u.powi(2);

        let newthdot = thdot + (3.0 * G / (2.0 * L) * th.sin() + 3.0 / (M * L.powi(2)) * u) * DT;
        let newthdot = newthdot.clamp(-MAX_SPEED, MAX_SPEED);
        let newth = th + newthdot * DT;

        self.theta = newth;
        self.theta_dot = newthdot;
        self.steps += 1;
        StepResult {
            obs: self.get_obs(),
            reward: -costs,
            terminated: false,
            truncated: self.steps >= MAX_STEPS,
        }
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        self.spec.check_state(state)?;
        self.theta = state[0];
        self.theta_dot = state[1];
        self.last_u = None;
        self.steps = 0;
        Ok(())
    }

    fn state(&self) -> Vec<f64> {
        vec![self.theta, self.theta_dot]
    }

    fn obs(&self) -> Vec<f32> {
        self.get_obs()
    }

    fn snapshot(&self) -> EnvSnapshot {
        EnvSnapshot::Pendulum(PendulumSnapshot {
            theta: self.theta,
            theta_dot: self.theta_dot,
            last_u: self.last_u,
            max_torque: MAX_TORQUE,
            length: L,
            step: self.steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gymnasium's float32 observations, written as the float64 values NumPy prints for them.
    fn f32s(xs: &[f64]) -> Vec<f32> {
        xs.iter().map(|&x| x as f32).collect()
    }
    use approx::assert_relative_eq;
    use std::f64::consts::FRAC_PI_2;

    fn at(theta: f64, theta_dot: f64) -> Pendulum {
        let mut env = Pendulum::new(0);
        env.set_state(&[theta, theta_dot]).unwrap();
        env
    }

    #[test]
    fn one_step_from_horizontal_by_hand() {
        // θ = π/2, θdot = 0, u = 1:
        // cost    = (π/2)² + 0.1·0² + 0.001·1² = 2.4674011002723395 + 0.001
        // newθdot = 0 + (3·10/2 · sin(π/2) + 3/1 · 1) · 0.05 = 18 · 0.05 = 0.9
        // newθ    = π/2 + 0.9 · 0.05 = π/2 + 0.045
        let mut env = at(FRAC_PI_2, 0.0);
        let r = env.step_native(&[1.0]);
        let newth = FRAC_PI_2 + 0.045;
        assert_relative_eq!(
            r.reward,
            -(FRAC_PI_2 * FRAC_PI_2 + 0.001),
            max_relative = 1e-15
        );
        assert_relative_eq!(env.theta_dot, 0.9, max_relative = 1e-15);
        assert_relative_eq!(env.theta, newth, max_relative = 1e-15);
        assert_eq!(r.obs, vec![newth.cos() as f32, newth.sin() as f32, 0.9]);
        assert!(!r.terminated && !r.truncated);
        // Gymnasium 1.4.0 / NumPy 2.4.6, float64 action: same step.
        assert_eq!(r.reward, -2.4684011002723394);
        assert_eq!(env.state(), vec![1.6157963267948965, 0.9]);
        assert_eq!(
            r.obs,
            f32s(&[
                -0.044984813779592514,
                0.9989876747131348,
                0.8999999761581421
            ])
        );
    }

    #[test]
    fn torque_is_clipped_before_cost_and_speed_after_update() {
        // θ = 1, θdot = 7.9, u = 5 → u = 2:
        // cost    = 1 + 0.1·7.9² + 0.001·2² = 1 + 6.241 + 0.004 = 7.245
        // newθdot = 7.9 + (15 sin 1 + 6) · 0.05 ≈ 8.83 → clipped to 8; newθ = 1 + 8·0.05 = 1.4
        let mut env = at(1.0, 7.9);
        let r = env.step_native(&[5.0]);
        assert_relative_eq!(r.reward, -7.245, max_relative = 1e-14);
        assert_eq!(env.state(), vec![1.4, 8.0]);
        assert_eq!(env.last_u, Some(2.0));
        // Gymnasium reference values for the same step.
        assert_eq!(r.reward, -7.245);
        assert_eq!(r.obs, f32s(&[0.1699671447277069, 0.9854497313499451, 8.0]));
        // Agent action 1.0 means the same clipped torque as any native u ≥ 2.
        let mut a = at(1.0, 7.9);
        assert_eq!(a.step(&[1.0]), r);
    }

    #[test]
    fn reward_wraps_the_angle() {
        assert_relative_eq!(angle_normalize(3.0 * PI / 2.0), -FRAC_PI_2, epsilon = 1e-12);
        assert_eq!(angle_normalize(0.0), 0.0);
        assert_eq!(angle_normalize(PI), -PI);
        let r1 = at(3.0 * PI / 2.0, 0.5).step_native(&[0.0]).reward;
        let r2 = at(-FRAC_PI_2, 0.5).step_native(&[0.0]).reward;
        // Gymnasium gives -2.4924011002723394 for both.
        assert_eq!(r1, -2.4924011002723394);
        assert_eq!(r2, -2.4924011002723394);
    }

    #[test]
    fn gymnasium_trajectory_and_200_step_truncation() {
        // Reference: gym.make("Pendulum-v1"), state [2.0, -0.5], u_t = 2 sin(0.1 t) as float64.
        let mut env = at(2.0, -0.5);
        let mut total = 0.0;
        for t in 0..MAX_STEPS {
            let r = env.step_native(&[2.0 * (0.1 * t as f64).sin()]);
            total += r.reward;
            assert!(!r.terminated);
            assert_eq!(r.truncated, t + 1 == MAX_STEPS, "step {}", t + 1);
            match t + 1 {
                1 => {
                    assert_eq!(r.reward, -4.025);
                    assert_relative_eq!(env.theta, 2.009098653505963, max_relative = 1e-14);
                    assert_relative_eq!(env.theta_dot, 0.18197307011926134, max_relative = 1e-13);
                }
                50 => {
                    assert_relative_eq!(r.reward, -3.0523097789985316, max_relative = 1e-12);
                    assert_relative_eq!(env.theta, -0.6466406690328039, max_relative = 1e-12);
                    assert_relative_eq!(env.theta_dot, -5.961029991522924, max_relative = 1e-12);
                }
                200 => {
                    assert_relative_eq!(r.reward, -0.1035216476269575, max_relative = 1e-10);
                    assert_relative_eq!(env.theta, -6.272991536519314, max_relative = 1e-12);
                    assert_relative_eq!(env.theta_dot, -0.698239162178938, max_relative = 1e-10);
                }
                _ => {}
            }
        }
        assert_relative_eq!(total, -1131.33140612704, max_relative = 1e-12);
    }

    #[test]
    fn reset_draws_inside_the_start_box_and_restarts_the_clock() {
        let mut env = Pendulum::new(1);
        for _ in 0..5 {
            env.step_native(&[0.0]);
        }
        for seed in 0..50 {
            let obs = env.reset(Some(seed));
            assert!((-PI..PI).contains(&env.theta));
            assert!((-1.0..1.0).contains(&env.theta_dot));
            assert_eq!(obs, env.obs());
            assert_eq!(env.steps, 0);
            assert_eq!(env.last_u, None);
        }
    }

    #[test]
    fn snapshot_has_angle_and_torque() {
        let mut env = at(0.3, 0.0);
        env.step_native(&[-3.0]);
        let v = serde_json::to_value(env.snapshot()).unwrap();
        assert_eq!(v["env"], "pendulum");
        assert_eq!(v["lastU"], -2.0);
        assert_eq!(v["step"], 1);
        assert_eq!(v["theta"], env.theta);
        assert_eq!(v["thetaDot"], env.theta_dot);
    }
}
