//! Spec, field-table and share-link tests (known answers).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::fields::{FIELDS, MAX_SAFE_SEED, describe};
use super::*;

fn link_of(json: &str) -> String {
    format!(
        "v1.{}.{:08x}",
        URL_SAFE_NO_PAD.encode(json),
        crc32fast::hash(json.as_bytes())
    )
}

#[test]
fn defaults_are_valid_and_round_trip() {
    for mode in Mode::ALL {
        let cfg = ExperimentSpec::defaults(mode);
        assert_eq!(cfg.problems(), vec![], "{mode:?}");
        let link = encode_share(&cfg);
        assert!(link.starts_with("v1."), "{link}");
        assert_eq!(decode_share(&link).unwrap(), cfg);
        assert_eq!(decode_share(&format!("#{link}")).unwrap(), cfg);
    }
    assert_eq!(
        ExperimentSpec::default(),
        ExperimentSpec::defaults(Mode::Rl)
    );
}

#[test]
fn each_mode_has_its_own_temperature() {
    // The sampler's targets are defined at λ = 1; RL's Q scale wants a small λ.
    assert_eq!(ExperimentSpec::defaults(Mode::Sampler).lambda, 1.0);
    assert_eq!(ExperimentSpec::defaults(Mode::Rl).lambda, 0.1);
    // A spec that names only its mode gets that mode's defaults.
    let s = ExperimentSpec::from_json(r#"{"mode": "sampler"}"#).unwrap();
    assert_eq!(s, ExperimentSpec::defaults(Mode::Sampler));
}

#[test]
fn every_field_round_trips() {
    let cfg = ExperimentSpec {
        mode: Mode::Sampler,
        env: EnvName::MountainCar,
        target: TargetName::Rings,
        agent: Agent::Sac,
        estimator: "eta:0.25".parse().unwrap(),
        param: Parameterisation::Diffusion,
        solver: Solver::Heun,
        lambda: 0.37,
        k: 999,
        candidates: 3,
        ode_steps: 17,
        hidden: 48,
        emb_width: 6,
        actor_lr: 3e-4,
        critic_lr: 2.5e-3,
        batch: 7,
        warmup: 5,
        warmup_noise: WarmupNoise::Pink,
        replay: 77,
        proposal: ProposalName::Prior,
        eval_every: 0,
        eval_episodes: 9,
        steps: 1234,
        seed: MAX_SAFE_SEED,
        seeds: 7,
    };
    assert_eq!(cfg.problems(), vec![]);
    assert_eq!(decode_share(&encode_share(&cfg)).unwrap(), cfg);
}

#[test]
fn every_estimator_and_parameterisation_is_valid_in_every_mode() {
    for mode in Mode::ALL {
        for (est, _) in fields::ESTIMATORS {
            for param in [Parameterisation::Flow, Parameterisation::Diffusion] {
                let s = ExperimentSpec {
                    estimator: est.parse().unwrap(),
                    param,
                    ..ExperimentSpec::defaults(mode)
                };
                assert_eq!(s.problems(), vec![], "{mode:?} {est} {param:?}");
            }
        }
    }
}

#[test]
fn errors_name_field_value_and_range() {
    let cfg = ExperimentSpec {
        mode: Mode::Sampler,
        k: 0,
        lambda: -1.0,
        actor_lr: f64::NAN,
        estimator: "eta:2".parse().unwrap(),
        emb_width: 7,
        ..Default::default()
    };
    let p = cfg.problems();
    let fields: Vec<&str> = p.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["estimator", "lambda", "k", "embWidth", "actorLr"]);
    let k = &p[2];
    assert_eq!((k.value.as_str(), k.range.as_str()), ("0", "1..=1000"));
    assert_eq!(k.message, "k = 0 is out of range (allowed: 1..=1000)");
    assert_eq!(
        p[1].message,
        "lambda = -1 is out of range (allowed: (0, 1000])"
    );
    assert!(p[3].message.contains("even"), "{}", p[3].message);
    assert!(
        p[4].message.contains("not a finite number"),
        "{}",
        p[4].message
    );
    assert!(p[0].message.contains("[0, 1]"), "{}", p[0].message);
    // An unknown target is a parse error naming it.
    let e = ExperimentSpec::from_json(r#"{"target": "banana"}"#).unwrap_err();
    assert!(e.to_string().contains("banana"), "{e}");
}

#[test]
fn field_table_covers_every_spec_key_once() {
    let json = serde_json::to_value(ExperimentSpec::default()).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut table: Vec<&str> = FIELDS.iter().map(|f| f.key).collect();
    keys.sort();
    table.sort();
    assert_eq!(keys, table);
    // Each select offers every value its enum has (the serde form of each listed option
    // parses, and the default of each mode is among them).
    for f in FIELDS {
        let info = f.info();
        for mode in Mode::ALL {
            let spec = ExperimentSpec::defaults(mode);
            if info.control == fields::Control::Select {
                let cur = (f.get)(&spec);
                let cur = cur.as_str().unwrap();
                assert!(
                    info.options.iter().any(|o| o.value == cur),
                    "{}: default {cur} not offered",
                    f.key
                );
            }
        }
        for o in &info.options {
            let mut spec = serde_json::to_value(ExperimentSpec::default()).unwrap();
            spec[f.key] = serde_json::Value::String(o.value.clone());
            let s = ExperimentSpec::from_value(spec).unwrap_or_else(|e| panic!("{}: {e}", f.key));
            assert_eq!(s.problems(), vec![], "{} = {}", f.key, o.value);
        }
    }
    assert_eq!(describe().len(), FIELDS.len());
    let env = describe().into_iter().find(|f| f.key == "env").unwrap();
    assert_eq!(
        env.options
            .iter()
            .map(|o| o.value.as_str())
            .collect::<Vec<_>>(),
        ["pendulum", "mountain-car", "multigoal"]
    );
}

#[test]
fn named_specs_are_valid() {
    for (name, _) in resolve::NAMED {
        let s = resolve::named(name).unwrap();
        assert_eq!(s.problems(), vec![], "{name}");
    }
    assert_eq!(resolve::named("page").unwrap(), ExperimentSpec::default());
    let r = resolve::named("released").unwrap();
    assert_eq!(
        (r.hidden, r.batch, r.k, r.candidates, r.warmup),
        (256, 256, 100, 32, 10_000)
    );
    assert!(resolve::named("turbo").is_none());
    // What the benches measure: the named spec's trainer config, overrides by spec field name.
    let b = resolve::named_train_config("released", Some(r#"{"batch": 512}"#)).unwrap();
    assert_eq!(
        (b.batch_size, b.posterior_samples, b.actor_hidden),
        (512, 100, 256)
    );
    assert!(resolve::named_train_config("released", Some(r#"{"batchSize": 512}"#)).is_err());
    assert!(
        resolve::named_train_config("released", Some(r#"{"k": 0}"#))
            .unwrap_err()
            .contains("k = 0")
    );
    assert!(resolve::named_train_config("nope", None).is_err());
}

#[test]
fn bad_links_say_why() {
    let good = encode_share(&ExperimentSpec::default());
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
    let bad = ExperimentSpec {
        k: 0,
        ..Default::default()
    };
    let e = decode_share(&encode_share(&bad)).unwrap_err();
    assert!(e.to_string().contains("k = 0"), "{e}");
    // Unknown field.
    let e = decode_share(&link_of(r#"{"k": 4, "turbo": true}"#)).unwrap_err();
    assert!(e.to_string().contains("turbo"), "{e}");
    // Missing fields take defaults (older links keep working).
    assert_eq!(
        decode_share(&link_of(r#"{"k": 4}"#)).unwrap(),
        ExperimentSpec {
            k: 4,
            ..Default::default()
        }
    );
}

#[test]
fn links_written_before_the_new_fields_still_open() {
    // A v1 link of the previous release (all of its fields, none of warmup/replay/…).
    let old = r#"{"mode":"sampler","env":"multigoal","target":"gmm40","agent":"rfm","estimator":"noise","param":"flow","solver":"euler","lambda":1.0,"k":16,"candidates":8,"odeSteps":10,"hidden":64,"actorLr":0.001,"criticLr":0.001,"batch":128,"seed":3}"#;
    let s = decode_share(&link_of(old)).unwrap();
    assert_eq!(s.target, TargetName::Gmm40);
    assert_eq!((s.seed, s.warmup, s.seeds), (3, 200, 1));
}

#[test]
fn seeds_at_once_are_one_to_max_seeds() {
    use super::fields::MAX_SEEDS;
    for (n, ok) in [
        (0, false),
        (1, true),
        (8, true),
        (MAX_SEEDS, true),
        (MAX_SEEDS + 1, false),
    ] {
        let s = ExperimentSpec {
            seeds: n,
            ..Default::default()
        };
        let p = s.problems();
        assert_eq!(p.is_empty(), ok, "seeds = {n}: {p:?}");
        if !ok {
            assert_eq!(p[0].field, "seeds", "{p:?}");
        }
    }
}

#[cfg(not(target_arch = "wasm32"))] // proptest is a native dev-dependency
mod prop {
    use super::*;
    use proptest::prelude::*;

    fn any_spec() -> impl Strategy<Value = ExperimentSpec> {
        (
            (0usize..2, 0usize..3, 0usize..4, any::<bool>()),
            (
                0usize..fields::ESTIMATORS.len(),
                0u32..=100,
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
            (0usize..=5000, 1usize..=512, 0usize..=20_000),
        )
            .prop_map(
                |(
                    (mode, env, target, sac),
                    (est, eta, diff, heun),
                    (lambda, k, candidates, ode_steps, hidden),
                    (actor_lr, critic_lr, batch, seed),
                    (warmup, emb_half, steps),
                )| {
                    let estimator = if est == 3 {
                        format!("eta:{}", eta as f32 / 100.0)
                    } else {
                        fields::ESTIMATORS[est].0.to_string()
                    }
                    .parse()
                    .unwrap();
                    ExperimentSpec {
                        mode: Mode::ALL[mode],
                        env: EnvName::ALL[env],
                        target: TargetName::ALL[target],
                        agent: if sac { Agent::Sac } else { Agent::Rfm },
                        estimator,
                        param: if diff {
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
                        emb_width: 2 * emb_half,
                        actor_lr,
                        critic_lr,
                        batch,
                        warmup,
                        steps,
                        seed,
                        ..Default::default()
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Valid specs round-trip exactly (f32/f64 survive JSON bit for bit).
        #[test]
        fn valid_specs_round_trip(cfg in any_spec()) {
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
            let _ = decode_share(&link_of(&json));
        }
    }
}

#[test]
fn a_patch_overlays_fields_and_a_mode_switch_starts_from_that_modes_defaults() {
    let rl = resolve::named("released").unwrap();
    let obj = |j: serde_json::Value| j.as_object().unwrap().clone();
    let p = rl.patched(obj(serde_json::json!({"k": 32}))).unwrap();
    assert_eq!((p.k, p.hidden), (32, 256));
    let s = rl
        .patched(obj(serde_json::json!({"mode": "sampler", "seed": 4})))
        .unwrap();
    assert_eq!(
        s,
        ExperimentSpec {
            seed: 4,
            ..ExperimentSpec::defaults(Mode::Sampler)
        }
    );
    assert!(rl.patched(obj(serde_json::json!({"turbo": 1}))).is_err());
}
