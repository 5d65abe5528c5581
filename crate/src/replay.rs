//! The replay buffer: a fixed-capacity ring of transitions `(s, a, r, s', done)` in flat `f32`
//! arrays (pure Rust), sampled uniformly with replacement from the crate's seeded RNG.
//!
//! Once full, each new transition overwrites the oldest. `done` is the *terminated* flag
//! (a terminal state, so no bootstrap); a time-limit truncation is stored with `done = false`
//! and the real final observation as `s'`.

use rand::Rng as _;

use crate::rng::Rng;

/// A ring buffer of transitions.
#[derive(Clone, Debug)]
pub struct ReplayBuffer {
    capacity: usize,
    obs_dim: usize,
    act_dim: usize,
    obs: Vec<f32>,
    act: Vec<f32>,
    rew: Vec<f32>,
    next_obs: Vec<f32>,
    done: Vec<f32>,
    /// Slot the next push writes.
    head: usize,
    len: usize,
}

/// A sampled batch, row-major: `obs`/`next_obs` `[n * obs_dim]`, `act` `[n * act_dim]`,
/// `rew`/`done` `[n]` (`done` is `1.0` for a terminal transition, else `0.0`).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub n: usize,
    pub obs: Vec<f32>,
    pub act: Vec<f32>,
    pub rew: Vec<f32>,
    pub next_obs: Vec<f32>,
    pub done: Vec<f32>,
}

impl ReplayBuffer {
    /// An empty buffer holding at most `capacity` transitions (storage is allocated up front).
    ///
    /// # Panics
    /// If `capacity`, `obs_dim` or `act_dim` is zero.
    pub fn new(capacity: usize, obs_dim: usize, act_dim: usize) -> Self {
        assert!(
            capacity > 0 && obs_dim > 0 && act_dim > 0,
            "replay: zero capacity or width"
        );
        Self {
            capacity,
            obs_dim,
            act_dim,
            obs: vec![0.0; capacity * obs_dim],
            act: vec![0.0; capacity * act_dim],
            rew: vec![0.0; capacity],
            next_obs: vec![0.0; capacity * obs_dim],
            done: vec![0.0; capacity],
            head: 0,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Store one transition, overwriting the oldest when full.
    ///
    /// # Panics
    /// If a slice has the wrong length.
    pub fn push(&mut self, obs: &[f32], act: &[f32], rew: f32, next_obs: &[f32], done: bool) {
        let (o, a) = (self.obs_dim, self.act_dim);
        assert!(
            obs.len() == o && next_obs.len() == o && act.len() == a,
            "replay: push expects obs/next_obs of {o} and act of {a} values, got {}/{}/{}",
            obs.len(),
            next_obs.len(),
            act.len()
        );
        let i = self.head;
        self.obs[i * o..(i + 1) * o].copy_from_slice(obs);
        self.act[i * a..(i + 1) * a].copy_from_slice(act);
        self.rew[i] = rew;
        self.next_obs[i * o..(i + 1) * o].copy_from_slice(next_obs);
        self.done[i] = if done { 1.0 } else { 0.0 };
        self.head = (self.head + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// The transition in slot `i` (`i < len`) as a one-row batch (slot order, not age order).
    pub fn get(&self, i: usize) -> Batch {
        self.gather(&[i])
    }

    /// `n` transitions drawn uniformly with replacement.
    ///
    /// # Panics
    /// If the buffer is empty.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Batch {
        assert!(self.len > 0, "replay: sampling from an empty buffer");
        let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..self.len)).collect();
        self.gather(&idx)
    }

    fn gather(&self, idx: &[usize]) -> Batch {
        let (o, a) = (self.obs_dim, self.act_dim);
        let n = idx.len();
        let mut b = Batch {
            n,
            obs: Vec::with_capacity(n * o),
            act: Vec::with_capacity(n * a),
            rew: Vec::with_capacity(n),
            next_obs: Vec::with_capacity(n * o),
            done: Vec::with_capacity(n),
        };
        for &i in idx {
            b.obs.extend_from_slice(&self.obs[i * o..(i + 1) * o]);
            b.act.extend_from_slice(&self.act[i * a..(i + 1) * a]);
            b.rew.push(self.rew[i]);
            b.next_obs
                .extend_from_slice(&self.next_obs[i * o..(i + 1) * o]);
            b.done.push(self.done[i]);
        }
        b
    }

    /// Overwrite every stored reward (fault-injection tests use this to poison the buffer).
    pub fn map_rewards(&mut self, f: impl Fn(f32) -> f32) {
        for r in &mut self.rew[..self.len] {
            *r = f(*r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;

    fn push_n(buf: &mut ReplayBuffer, from: usize, to: usize) {
        for k in from..to {
            let x = k as f32;
            buf.push(&[x, -x], &[x / 10.0], x, &[x + 1.0, -x - 1.0], k % 3 == 0);
        }
    }

    #[test]
    fn ring_fills_then_overwrites_the_oldest() {
        let mut buf = ReplayBuffer::new(4, 2, 1);
        assert!(buf.is_empty());
        push_n(&mut buf, 0, 3);
        assert_eq!(buf.len(), 3);
        assert_eq!(buf.get(2).rew, vec![2.0]);
        push_n(&mut buf, 3, 6);
        // Capacity 4: transitions 2, 3, 4, 5 remain; 4 and 5 overwrote slots 0 and 1.
        assert_eq!(buf.len(), 4);
        assert_eq!(buf.capacity(), 4);
        let rews: Vec<f32> = (0..4).map(|i| buf.get(i).rew[0]).collect();
        assert_eq!(rews, vec![4.0, 5.0, 2.0, 3.0]);
        let b = buf.get(0);
        assert_eq!(b.obs, vec![4.0, -4.0]);
        assert_eq!(b.act, vec![0.4]);
        assert_eq!(b.next_obs, vec![5.0, -5.0]);
        assert_eq!(b.done, vec![0.0]);
        assert_eq!(buf.get(3).done, vec![1.0]);
    }

    #[test]
    fn sampling_is_seeded_uniform_and_consistent() {
        let mut buf = ReplayBuffer::new(10, 2, 1);
        push_n(&mut buf, 0, 5);
        let a = buf.sample(1000, &mut rng::seeded(1));
        let b = buf.sample(1000, &mut rng::seeded(1));
        assert_eq!(a, b);
        assert_eq!(a.n, 1000);
        assert_eq!(
            (a.obs.len(), a.act.len(), a.next_obs.len()),
            (2000, 1000, 2000)
        );
        // Only filled slots are drawn, each about equally often, and rows stay aligned.
        let mut counts = [0usize; 5];
        for i in 0..a.n {
            let k = a.rew[i] as usize;
            counts[k] += 1;
            assert_eq!(a.obs[2 * i], a.rew[i]);
            assert_eq!(a.next_obs[2 * i], a.rew[i] + 1.0);
        }
        assert!(
            counts.iter().all(|&c| (150..250).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    #[should_panic(expected = "push expects")]
    fn wrong_width_panics_with_a_message() {
        ReplayBuffer::new(2, 2, 1).push(&[0.0], &[0.0], 0.0, &[0.0, 0.0], false);
    }
}
