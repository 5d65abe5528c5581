//! Browser bindings (wasm32 only): glue, no algorithm logic. Values cross as serde types via
//! `serde-wasm-bindgen`; every entry point is async and returns `Result<_, JsError>` so the
//! worker can report failures as messages instead of crashing.

use wasm_bindgen::prelude::*;

use crate::device::{BackendChoice, ComputeDevice};
use crate::probe::{ProbeConfig, run_probe};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn to_js<T: serde::Serialize>(v: &T) -> Result<JsValue, JsError> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(js_err)
}

/// Select a backend (`"auto" | "cpu" | "webgpu"`) and describe it.
#[wasm_bindgen(js_name = selectDevice)]
pub async fn select_device(backend: String) -> Result<JsValue, JsError> {
    let choice: BackendChoice = backend.parse().map_err(js_err)?;
    let device = ComputeDevice::select(choice).await.map_err(js_err)?;
    to_js(device.info())
}

/// Run the pipeline probe (small MLP, Adam) on the chosen backend; returns a `ProbeReport`.
#[wasm_bindgen(js_name = runProbe)]
pub async fn run_probe_js(backend: String, config: JsValue) -> Result<JsValue, JsError> {
    let choice: BackendChoice = backend.parse().map_err(js_err)?;
    let cfg: ProbeConfig = if config.is_undefined() || config.is_null() {
        ProbeConfig::default()
    } else {
        serde_wasm_bindgen::from_value(config).map_err(js_err)?
    };
    let device = ComputeDevice::select(choice).await.map_err(js_err)?;
    let report = run_probe(&device, &cfg).await.map_err(js_err)?;
    to_js(&report)
}
