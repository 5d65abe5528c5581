//! Records the native numbers of the browser-parity cases in `tests/parity/native.json`
//! (`tests/web.rs` checks the wasm modules against them in Chromium). Fails when the file is
//! stale; regenerate with `RFM_WRITE_GENERATED=1 cargo test -p rfm-playground --test native_parity`.
#![cfg(not(target_arch = "wasm32"))]

mod parity;

use std::collections::BTreeMap;

use rfm_playground::device::ComputeDevice;

#[test]
fn native_parity_file_is_current() {
    let mut now: BTreeMap<String, Vec<[f64; 4]>> = BTreeMap::new();
    for (name, spec, steps) in parity::cases() {
        let t = pollster::block_on(parity::trace_on(&spec, steps, ComputeDevice::cpu()));
        assert!(!t.is_empty(), "{name}: no updates in {steps} steps");
        now.insert(name.to_string(), t);
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/parity/native.json");
    // NaN has no JSON form: absent figures are written as null.
    let json = serde_json::to_string_pretty(&now).unwrap() + "\n";
    if std::env::var_os("RFM_WRITE_GENERATED").is_some() {
        std::fs::write(path, &json).unwrap();
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    let recorded: BTreeMap<String, Vec<[Option<f64>; 4]>> =
        serde_json::from_str(&on_disk).unwrap_or_default();
    let recorded: BTreeMap<String, Vec<[f64; 4]>> = recorded
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                v.into_iter()
                    .map(|r| r.map(|x| x.unwrap_or(f64::NAN)))
                    .collect(),
            )
        })
        .collect();
    for (name, t) in &now {
        let want = recorded.get(name).cloned().unwrap_or_default();
        // Native against native: the same numbers, up to the last printed digit.
        let diffs = parity::differences(name, &want, t);
        assert!(
            diffs.is_empty(),
            "tests/parity/native.json is out of date ({}): run `RFM_WRITE_GENERATED=1 cargo test -p rfm-playground --test native_parity` and commit it",
            diffs.join("; ")
        );
    }
}
