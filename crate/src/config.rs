//! The playground's experiment config and its share-link codec.
//!
//! [`PlaygroundConfig`] is the ONE experiment description the page edits, the share link
//! carries and the session runs. Every field has a documented default and range;
//! [`PlaygroundConfig::validate`] reports every problem as a [`FieldError`] naming the field,
//! the value and the allowed range.
//!
//! Share links put the config (never weights) in the URL fragment:
//!
//! ```text
//! v1.<base64url(JSON)>.<crc32 of the JSON, 8 hex digits>
//! ```
//!
//! The version prefix lets later releases change the payload; the checksum catches truncated
//! or hand-edited links. [`decode_share`] never panics: a malformed, tampered or future-version
//! link is an [`ShareError`] whose message says what is wrong, and the caller falls back to
//! the defaults.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::envs::EnvName;
use crate::nets::{Parameterisation, Solver};
use crate::rfm::estimators::Estimator;
use crate::rfm::targets::Target;

/// The share-link format version this build writes (and the newest it reads).
pub const SHARE_VERSION: u32 = 1;

/// Longest fragment accepted, in bytes (a config is ~400; this bounds the work on junk).
pub const MAX_FRAGMENT_LEN: usize = 8 * 1024;

/// What the playground trains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Online RL on a control task (env, critic, flow actor).
    #[default]
    Rl,
    /// Fit a 2-D flow to a known energy exp(-E/λ): no env, no critic.
    Sampler,
}

/// The RL agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Agent {
    /// Flow policy trained by Reverse Flow Matching with the chosen estimator.
    #[default]
    Rfm,
    /// Gaussian soft actor-critic baseline (estimator unused).
    Sac,
}

/// One experiment, as the page shows it and the share link carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct PlaygroundConfig {
    /// `rl` or `sampler`. Default `rl`.
    pub mode: Mode,
    /// RL task: `pendulum`, `mountain-car`, `multigoal`. Default `multigoal`.
    pub env: EnvName,
    /// Sampler target: `gmm8`, `two-moons`, `rings`, `gmm40`. Default `gmm8`.
    pub target: String,
    /// RL agent: `rfm` or `sac`. Default `rfm`.
    pub agent: Agent,
    /// Posterior-mean estimator: `rfm` (optimal control variate), `noise`, `grad`, or
    /// `eta:X` with X in [0, 1]. Default `rfm`.
    pub estimator: String,
    /// `flow` (velocity, linear path) or `diffusion` (noise, VP path). Default `flow`.
    pub param: Parameterisation,
    /// ODE solver of the sampler: `euler` or `heun`. Default `euler`.
    pub solver: Solver,
    /// Temperature λ of exp(Q/λ) (sampler: exp(-E/λ)). Default 0.1; (0, 1000].
    pub lambda: f32,
    /// Posterior samples K per estimate. Default 16; 1..=1000.
    pub k: usize,
    /// Action candidates per state when acting. Default 8; 1..=256.
    pub candidates: usize,
    /// ODE steps from noise to action. Default 10; 1..=100.
    pub ode_steps: usize,
    /// Hidden width of every network. Default 64; 4..=512.
    pub hidden: usize,
    /// Actor (flow) Adam learning rate. Default 1e-3; [1e-6, 0.1].
    pub actor_lr: f64,
    /// Critic Adam learning rate. Default 1e-3; [1e-6, 0.1].
    pub critic_lr: f64,
    /// Rows per update. Default 128; 1..=1024.
    pub batch: usize,
    /// Seed of every random draw. Default 0; 0..=2^53-1 (exact in JavaScript).
    pub seed: u64,
}

impl Default for PlaygroundConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Rl,
            env: EnvName::Multigoal,
            target: "gmm8".to_string(),
            agent: Agent::Rfm,
            estimator: "rfm".to_string(),
            param: Parameterisation::Flow,
            solver: Solver::Euler,
            lambda: 0.1,
            k: 16,
            candidates: 8,
            ode_steps: 10,
            hidden: 64,
            actor_lr: 1e-3,
            critic_lr: 1e-3,
            batch: 128,
            seed: 0,
        }
    }
}

/// One field's problem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// The field's name as in the JSON/URL (camelCase).
    pub field: String,
    pub value: String,
    /// The allowed values, e.g. `"1..=1000"` or `"(0, 1000]"`.
    pub range: String,
    /// One plain-language line.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// All problems of a config, in field order.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<FieldError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<&str> = self.0.iter().map(|e| e.message.as_str()).collect();
        f.write_str(&lines.join("; "))
    }
}

/// JavaScript's largest exactly representable integer.
const MAX_SAFE_SEED: u64 = (1 << 53) - 1;

struct Check(Vec<FieldError>);

impl Check {
    fn fail(&mut self, field: &str, value: impl fmt::Display, range: &str, why: &str) {
        let value = value.to_string();
        self.0.push(FieldError {
            field: field.to_string(),
            message: format!("{field} = {value} is {why} (allowed: {range})"),
            value,
            range: range.to_string(),
        });
    }

    fn int(&mut self, field: &str, v: usize, lo: usize, hi: usize) {
        if v < lo || v > hi {
            self.fail(field, v, &format!("{lo}..={hi}"), "out of range");
        }
    }

    fn float(&mut self, field: &str, v: f64, lo: f64, hi: f64, lo_open: bool, range: &str) {
        let ok = v.is_finite() && (if lo_open { v > lo } else { v >= lo }) && v <= hi;
        if !ok {
            let why = if v.is_finite() {
                "out of range"
            } else {
                "not a finite number"
            };
            self.fail(field, v, range, why);
        }
    }
}

impl PlaygroundConfig {
    /// Every problem of this config (empty when it is usable).
    pub fn problems(&self) -> Vec<FieldError> {
        let mut c = Check(Vec::new());
        if let Err(e) = Target::from_name(&self.target) {
            c.fail(
                "target",
                &self.target,
                "gmm8, two-moons, rings, gmm40",
                &e.to_string(),
            );
        }
        if let Err(e) = Estimator::from_name(&self.estimator) {
            c.fail(
                "estimator",
                &self.estimator,
                "rfm, noise, grad, eta:X with X in [0, 1]",
                &e.to_string(),
            );
        } else if let Some(x) = self.estimator.strip_prefix("eta:") {
            // from_name accepts any finite η; the page offers the interpolation range.
            match x.parse::<f32>() {
                Ok(eta) if (0.0..=1.0).contains(&eta) => {}
                _ => c.fail(
                    "estimator",
                    &self.estimator,
                    "eta:X with X in [0, 1]",
                    "out of range",
                ),
            }
        }
        if self.mode == Mode::Rl {
            if self.param == Parameterisation::Diffusion {
                c.fail(
                    "param",
                    "diffusion",
                    "flow (in RL mode)",
                    "only available in sampler mode",
                );
            }
            let rl_estimator = matches!(self.estimator.as_str(), "rfm" | "noise" | "grad");
            if self.agent == Agent::Rfm
                && !rl_estimator
                && Estimator::from_name(&self.estimator).is_ok()
            {
                c.fail(
                    "estimator",
                    &self.estimator,
                    "rfm, noise, grad (in RL mode)",
                    "only available in sampler mode",
                );
            }
        }
        c.float("lambda", self.lambda as f64, 0.0, 1000.0, true, "(0, 1000]");
        c.int("k", self.k, 1, 1000);
        c.int("candidates", self.candidates, 1, 256);
        c.int("odeSteps", self.ode_steps, 1, 100);
        c.int("hidden", self.hidden, 4, 512);
        c.float("actorLr", self.actor_lr, 1e-6, 0.1, false, "[1e-6, 0.1]");
        c.float("criticLr", self.critic_lr, 1e-6, 0.1, false, "[1e-6, 0.1]");
        c.int("batch", self.batch, 1, 1024);
        if self.seed > MAX_SAFE_SEED {
            c.fail("seed", self.seed, "0..=9007199254740991", "out of range");
        }
        c.0
    }

    /// `Ok(())` or every problem at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let p = self.problems();
        if p.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(p))
        }
    }

    /// Parse a JSON object (missing fields take their defaults; unknown fields are errors).
    pub fn from_json(json: &str) -> Result<Self, ShareError> {
        serde_json::from_str(json).map_err(|e| ShareError::Json(e.to_string()))
    }
}

/// Why a share link could not be opened. Each message is one plain line for the page.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ShareError {
    #[error("the link holds no experiment settings")]
    Empty,
    #[error("the link is too long ({0} bytes; at most {MAX_FRAGMENT_LEN})")]
    TooLong(usize),
    #[error("the link's settings are not in a format this playground knows")]
    UnknownFormat,
    #[error(
        "the link was made by a newer playground (format v{0}; this one reads up to v{SHARE_VERSION})"
    )]
    FutureVersion(u32),
    #[error("the link is damaged: {0}")]
    Damaged(String),
    #[error("the link's settings are not valid JSON: {0}")]
    Json(String),
    #[error("the link's settings are out of range: {0}")]
    Invalid(ConfigErrors),
}

/// Encode a config as a share-link fragment (without the leading `#`).
pub fn encode_share(cfg: &PlaygroundConfig) -> String {
    let json = serde_json::to_string(cfg).expect("a PlaygroundConfig always serialises");
    let crc = crc32fast::hash(json.as_bytes());
    format!(
        "v{SHARE_VERSION}.{}.{crc:08x}",
        URL_SAFE_NO_PAD.encode(json.as_bytes())
    )
}

/// Decode and validate a share-link fragment (a leading `#` is ignored).
pub fn decode_share(fragment: &str) -> Result<PlaygroundConfig, ShareError> {
    let s = fragment.trim().trim_start_matches('#');
    if s.is_empty() {
        return Err(ShareError::Empty);
    }
    if s.len() > MAX_FRAGMENT_LEN {
        return Err(ShareError::TooLong(s.len()));
    }
    let mut parts = s.split('.');
    let (Some(version), Some(payload), Some(crc), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ShareError::UnknownFormat);
    };
    let version: u32 = version
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .ok_or(ShareError::UnknownFormat)?;
    if version > SHARE_VERSION {
        return Err(ShareError::FutureVersion(version));
    }
    if version == 0 {
        return Err(ShareError::UnknownFormat);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| ShareError::Damaged(format!("bad encoding ({e})")))?;
    let expected = u32::from_str_radix(crc, 16)
        .ok()
        .filter(|_| crc.len() == 8)
        .ok_or_else(|| ShareError::Damaged("bad checksum field".to_string()))?;
    if crc32fast::hash(&bytes) != expected {
        return Err(ShareError::Damaged(
            "checksum mismatch (edited or cut short?)".to_string(),
        ));
    }
    let json =
        std::str::from_utf8(&bytes).map_err(|_| ShareError::Damaged("not UTF-8".to_string()))?;
    let cfg = PlaygroundConfig::from_json(json)?;
    cfg.validate().map_err(ShareError::Invalid)?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let cfg = PlaygroundConfig::default();
        assert_eq!(cfg.problems(), vec![]);
        let link = encode_share(&cfg);
        assert!(link.starts_with("v1."), "{link}");
        assert_eq!(decode_share(&link).unwrap(), cfg);
        assert_eq!(decode_share(&format!("#{link}")).unwrap(), cfg);
    }

    #[test]
    fn every_field_round_trips() {
        let cfg = PlaygroundConfig {
            mode: Mode::Sampler,
            env: EnvName::MountainCar,
            target: "rings".into(),
            agent: Agent::Sac,
            estimator: "eta:0.25".into(),
            param: Parameterisation::Diffusion,
            solver: Solver::Heun,
            lambda: 0.37,
            k: 999,
            candidates: 3,
            ode_steps: 17,
            hidden: 48,
            actor_lr: 3e-4,
            critic_lr: 2.5e-3,
            batch: 7,
            seed: MAX_SAFE_SEED,
        };
        assert_eq!(decode_share(&encode_share(&cfg)).unwrap(), cfg);
    }

    #[test]
    fn errors_name_field_value_and_range() {
        let rl = PlaygroundConfig {
            param: Parameterisation::Diffusion,
            estimator: "eta:0.5".into(),
            ..Default::default()
        };
        let p = rl.problems();
        assert_eq!(
            p.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
            ["param", "estimator"]
        );
        assert!(p[0].message.contains("sampler mode"), "{}", p[0].message);
        let cfg = PlaygroundConfig {
            mode: Mode::Sampler,
            k: 0,
            lambda: -1.0,
            actor_lr: f64::NAN,
            estimator: "eta:2".into(),
            target: "banana".into(),
            ..Default::default()
        };
        let p = cfg.problems();
        let fields: Vec<&str> = p.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["target", "estimator", "lambda", "k", "actorLr"]);
        let k = &p[3];
        assert_eq!((k.value.as_str(), k.range.as_str()), ("0", "1..=1000"));
        assert_eq!(k.message, "k = 0 is out of range (allowed: 1..=1000)");
        assert!(
            p[4].message.contains("not a finite number"),
            "{}",
            p[4].message
        );
        assert!(p[0].message.contains("banana"), "{}", p[0].message);
    }

    #[test]
    fn bad_links_say_why() {
        let good = encode_share(&PlaygroundConfig::default());
        assert_eq!(decode_share(""), Err(ShareError::Empty));
        assert_eq!(decode_share("hello"), Err(ShareError::UnknownFormat));
        assert_eq!(
            decode_share(&good.replacen("v1.", "v9.", 1)),
            Err(ShareError::FutureVersion(9))
        );
        // Flip one payload character: checksum mismatch (or bad encoding), never a panic.
        let mut tampered = good.clone().into_bytes();
        tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
        let e = decode_share(std::str::from_utf8(&tampered).unwrap()).unwrap_err();
        assert!(matches!(e, ShareError::Damaged(_)), "{e}");
        // Cut short.
        let e = decode_share(&good[..good.len() - 12]).unwrap_err();
        assert!(
            matches!(e, ShareError::Damaged(_) | ShareError::UnknownFormat),
            "{e}"
        );
        // A well-formed link whose settings are out of range.
        let bad = PlaygroundConfig {
            k: 0,
            ..Default::default()
        };
        let e = decode_share(&encode_share(&bad)).unwrap_err();
        assert!(e.to_string().contains("k = 0"), "{e}");
        // Unknown field.
        let json = r#"{"k": 4, "turbo": true}"#;
        let link = format!(
            "v1.{}.{:08x}",
            URL_SAFE_NO_PAD.encode(json),
            crc32fast::hash(json.as_bytes())
        );
        let e = decode_share(&link).unwrap_err();
        assert!(e.to_string().contains("turbo"), "{e}");
        // Missing fields take defaults (older links keep working).
        let json = r#"{"k": 4}"#;
        let link = format!(
            "v1.{}.{:08x}",
            URL_SAFE_NO_PAD.encode(json),
            crc32fast::hash(json.as_bytes())
        );
        assert_eq!(
            decode_share(&link).unwrap(),
            PlaygroundConfig {
                k: 4,
                ..Default::default()
            }
        );
    }

    #[cfg(not(target_arch = "wasm32"))] // proptest is a native dev-dependency
    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn any_config() -> impl Strategy<Value = PlaygroundConfig> {
            (
                (
                    prop_oneof![Just(Mode::Rl), Just(Mode::Sampler)],
                    0usize..3,
                    0usize..4,
                    any::<bool>(),
                ),
                (
                    prop_oneof![
                        Just("rfm".to_string()),
                        Just("noise".to_string()),
                        Just("grad".to_string()),
                        (0u32..=100).prop_map(|x| format!("eta:{}", x as f32 / 100.0))
                    ],
                    any::<bool>(),
                    any::<bool>(),
                ),
                (
                    1e-3f32..1000.0,
                    1usize..=1000,
                    1usize..=256,
                    1usize..=100,
                    4usize..=512,
                ),
                (
                    1e-6f64..0.1,
                    1e-6f64..0.1,
                    1usize..=1024,
                    0u64..=MAX_SAFE_SEED,
                ),
            )
                .prop_map(
                    |(
                        (mode, env, target, sac),
                        (estimator, diff, heun),
                        (lambda, k, candidates, ode_steps, hidden),
                        (actor_lr, critic_lr, batch, seed),
                    )| {
                        // RL runs flow policies with the three named estimators only.
                        let rl = mode == Mode::Rl;
                        let estimator = if rl && estimator.starts_with("eta:") {
                            "rfm".to_string()
                        } else {
                            estimator
                        };
                        PlaygroundConfig {
                            mode,
                            env: EnvName::ALL[env],
                            target: ["gmm8", "two-moons", "rings", "gmm40"][target].to_string(),
                            agent: if sac { Agent::Sac } else { Agent::Rfm },
                            estimator,
                            param: if diff && !rl {
                                Parameterisation::Diffusion
                            } else {
                                Parameterisation::Flow
                            },
                            solver: if heun { Solver::Heun } else { Solver::Euler },
                            lambda,
                            k,
                            candidates,
                            ode_steps,
                            hidden,
                            actor_lr,
                            critic_lr,
                            batch,
                            seed,
                        }
                    },
                )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Valid configs round-trip exactly (f32/f64 survive JSON bit for bit).
            #[test]
            fn valid_configs_round_trip(cfg in any_config()) {
                prop_assert_eq!(cfg.problems(), vec![]);
                prop_assert_eq!(decode_share(&encode_share(&cfg)).unwrap(), cfg);
            }

            /// Arbitrary strings never panic the decoder.
            #[test]
            fn arbitrary_strings_never_panic(s in ".{0,600}") {
                let _ = decode_share(&s);
            }

            /// Arbitrary bytes behind a valid header and checksum never panic either: this
            /// reaches the JSON parser and the validator, not just the checksum.
            #[test]
            fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                let link = format!("v1.{}.{:08x}", URL_SAFE_NO_PAD.encode(&bytes), crc32fast::hash(&bytes));
                let _ = decode_share(&link);
            }

            /// Structured JSON with random values reaches validation and never panics.
            #[test]
            fn random_json_values_never_panic(k in any::<i64>(), lambda in any::<f64>(), est in "\\PC{0,12}", seed in any::<u64>()) {
                let json = serde_json::json!({"k": k, "lambda": lambda, "estimator": est, "seed": seed}).to_string();
                let link = format!("v1.{}.{:08x}", URL_SAFE_NO_PAD.encode(json.as_bytes()), crc32fast::hash(json.as_bytes()));
                let _ = decode_share(&link);
            }
        }
    }
}
