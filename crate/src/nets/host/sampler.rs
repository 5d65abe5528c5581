//! The ODE sampler of [`crate::nets::Policy::sample`] on the host, optionally scoring each
//! sample with a critic: the same grid, solvers and parameterisations (see `nets/policy.rs`),
//! run block by block of rows with every buffer reused.
//!
//! Rows are independent, so they are cut into blocks of at most [`block_rows`] rows (sized so
//! a block's hidden activations stay in cache; fewer when there are few rows, so that every
//! worker gets some); each block integrates all its ODE steps before the next. Natively the blocks are spread over the rayon pool in a few contiguous groups,
//! each with its own buffers, and so they are in the browser's threaded module (`threads`: a pool
//! of Web Workers); in the other wasm modules one group runs them in order. A run is reproducible for a
//! given machine and thread count; across those, a row's result can change in the last bits
//! (gemm's kernels sum a row in an order that depends on its place in the block). No random
//! numbers are drawn here: the caller supplies `y0`.

use super::critic::{CriticScratch, HostCritic};
use super::policy::{HostPolicy, Scratch};
use crate::nets::policy::{OdeConfig, Solver};

/// Rows per block for a net of width `hidden`: about 128 KiB per `[rows, hidden]` buffer.
pub fn block_rows(hidden: usize) -> usize {
    (32_768 / hidden.max(1)).clamp(16, 1024)
}

/// Buffers of one group of blocks.
#[derive(Debug, Default)]
struct Group {
    net: Scratch,
    critic: CriticScratch,
    f0: Vec<f32>,
    f1: Vec<f32>,
    y_pred: Vec<f32>,
    a: Vec<f32>,
    /// `[group rows]`: the critic's scores of this group's rows.
    q: Vec<f32>,
}

/// Reusable buffers of the host sampler. Keep one per caller and pass it to every call: after
/// the first call of a given size nothing is allocated.
#[derive(Debug, Default)]
pub struct HostSampler {
    groups: Vec<Group>,
    /// `emb(t_j, λ)·W_cond` at the grid times `t_0 … t_steps`: `[steps + 1, hidden]`.
    cond: Vec<f32>,
}

impl HostSampler {
    /// Integrate the sampling ODE for every row of `y` (`[rows, act_dim]`, `y0` on entry,
    /// `y(t_end)` on return) with states `s` (`[rows, state_dim]`, empty when `state_dim = 0`).
    /// `ode` must be valid.
    pub fn sample(
        &mut self,
        policy: &HostPolicy,
        y: &mut [f32],
        s: &[f32],
        lambda: f32,
        ode: &OdeConfig,
    ) {
        self.run(policy, None, y, s, lambda, ode, &mut []);
    }

    /// [`sample`](Self::sample), then `q[r] = min(Q1, Q2)(s_r, tanh(y_r))` for every row
    /// (`q`: `[rows]`).
    #[allow(clippy::too_many_arguments)]
    pub fn sample_scored(
        &mut self,
        policy: &HostPolicy,
        critic: &HostCritic,
        y: &mut [f32],
        s: &[f32],
        lambda: f32,
        ode: &OdeConfig,
        q: &mut [f32],
    ) {
        assert_eq!(
            critic.obs_dim, policy.config.state_dim,
            "critic and policy states"
        );
        assert_eq!(
            critic.act_dim, policy.config.act_dim,
            "critic and policy actions"
        );
        self.run(policy, Some(critic), y, s, lambda, ode, q);
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        policy: &HostPolicy,
        critic: Option<&HostCritic>,
        y: &mut [f32],
        s: &[f32],
        lambda: f32,
        ode: &OdeConfig,
        q: &mut [f32],
    ) {
        let (o, a, hid) = (
            policy.config.state_dim,
            policy.config.act_dim,
            policy.config.hidden,
        );
        let rows = y.len() / a;
        assert_eq!(y.len(), rows * a, "sample: y is not [rows, {a}]");
        assert_eq!(s.len(), rows * o, "sample: s is not [{rows}, {o}]");
        if critic.is_some() {
            assert_eq!(q.len(), rows, "sample: q is not [{rows}]");
        }
        if rows == 0 {
            return;
        }
        // The time grid of `Policy::sample`, and the conditioning at each grid time.
        let (h, times) = ode.grid();
        self.cond.resize(times.len() * hid, 0.0);
        for (t, c) in times.iter().zip(self.cond.chunks_exact_mut(hid)) {
            policy.cond_hidden(*t, lambda, c);
        }

        // Few rows (acting on one state): smaller blocks, so every worker gets some.
        let block = block_rows(hid).min(rows.div_ceil(workers()).max(MIN_SPLIT_ROWS));
        let blocks = rows.div_ceil(block);
        let groups = blocks.min(max_groups());
        let group_rows = blocks.div_ceil(groups) * block;
        let groups = rows.div_ceil(group_rows);
        if self.groups.len() < groups {
            self.groups.resize_with(groups, Group::default);
        }
        let cond = &self.cond;
        let times = &times;
        let job = |(g, (yg, grp)): (usize, (&mut [f32], &mut Group))| {
            let r0 = g * group_rows;
            let n = yg.len() / a;
            grp.q.resize(n, 0.0);
            for b0 in (0..n).step_by(block) {
                let b1 = (b0 + block).min(n);
                let sb = &s[(r0 + b0) * o..(r0 + b1) * o];
                let yb = &mut yg[b0 * a..b1 * a];
                integrate(policy, grp, yb, sb, cond, times, h, ode.solver);
                if let Some(c) = critic {
                    grp.a.clear();
                    grp.a.extend(yb.iter().map(|v| v.tanh()));
                    c.q_min(sb, &grp.a, &mut grp.q[b0..b1], &mut grp.critic);
                }
            }
        };
        let groups_mut = &mut self.groups[..groups];
        #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
        {
            use rayon::prelude::*;
            y.par_chunks_mut(group_rows * a)
                .zip(groups_mut.par_iter_mut())
                .enumerate()
                .for_each(job);
        }
        #[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
        y.chunks_mut(group_rows * a)
            .zip(groups_mut.iter_mut())
            .enumerate()
            .for_each(job);
        if critic.is_some() {
            for (qg, grp) in q.chunks_mut(group_rows).zip(&self.groups) {
                qg.copy_from_slice(&grp.q[..qg.len()]);
            }
        }
    }
}

/// Blocks are not cut below this many rows to feed more workers.
const MIN_SPLIT_ROWS: usize = 8;

/// Worker threads the groups are spread over (1 in wasm, except in the threaded module).
fn workers() -> usize {
    #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
    {
        rayon::current_num_threads()
    }
    #[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
    {
        1
    }
}

/// How many groups to split the blocks into: a few per worker thread, so a slow worker (the
/// machine is shared) does not hold up the rest.
fn max_groups() -> usize {
    2 * workers()
}

/// Integrate one block of rows `y` (`[rows, act]`) over the grid `times`; `cond` holds the
/// conditioning at each grid time. The arithmetic is `Policy::sample`'s, operation for
/// operation: Euler `y + f0·h`, Heun `y + (f0 + f1)·(h/2)` with `f1` at `y + f0·h`.
#[allow(clippy::too_many_arguments)]
fn integrate(
    policy: &HostPolicy,
    grp: &mut Group,
    y: &mut [f32],
    s: &[f32],
    cond: &[f32],
    times: &[f32],
    h: f32,
    solver: Solver,
) {
    let hid = policy.config.hidden;
    let n = y.len();
    let rows = n / policy.config.act_dim;
    policy.state_base(s, rows, &mut grp.net.base);
    grp.f0.resize(n, 0.0);
    let cond_at = |j: usize| &cond[j * hid..(j + 1) * hid];
    for i in 0..times.len() - 1 {
        policy.drift(y, cond_at(i), times[i], &mut grp.f0, &mut grp.net);
        match solver {
            Solver::Euler => {
                y.iter_mut().zip(&grp.f0).for_each(|(y, f)| *y += f * h);
            }
            Solver::Heun => {
                grp.y_pred.clear();
                grp.y_pred
                    .extend(y.iter().zip(&grp.f0).map(|(y, f)| y + f * h));
                grp.f1.resize(n, 0.0);
                policy.drift(
                    &grp.y_pred,
                    cond_at(i + 1),
                    times[i + 1],
                    &mut grp.f1,
                    &mut grp.net,
                );
                let half = 0.5 * h;
                y.iter_mut()
                    .zip(grp.f0.iter().zip(&grp.f1))
                    .for_each(|(y, (f0, f1))| *y += (f0 + f1) * half);
            }
        }
    }
}
