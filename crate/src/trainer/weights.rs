//! Named parameter tensors: how every trained network is exported and imported.
//!
//! A tensor is named by its path in the module structure, `prefix.field.index.param`, e.g.
//! `actor.input.weight`, `actor.blocks.0.bias`, `critic.q1.layers.2.weight`: burn's own module
//! paths ([`ModuleVisitor::enter_module`]), so the names survive adding or reordering
//! modules, and the host copies (`nets::host`) name theirs the same way (a test checks it).
//! Shapes are burn's (`Linear.weight` is `[d_in, d_out]`). Every read is async.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::device::{DeviceError, read_f32};

/// One named parameter tensor (row-major values).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Tracks the module path during a visit or a map.
#[derive(Default)]
struct PathStack(Vec<String>);

impl PathStack {
    fn name(&self, prefix: &str) -> String {
        let mut s = prefix.to_string();
        for p in &self.0 {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(p);
        }
        s
    }
}

/// The path names of `module`'s float parameters under `prefix`, in burn's visiting order,
/// with their shapes (no data is read).
pub fn param_names<M: Module>(prefix: &str, module: &M) -> Vec<(String, Vec<usize>)> {
    struct Names<'a> {
        prefix: &'a str,
        path: PathStack,
        out: Vec<(String, Vec<usize>)>,
    }
    impl ModuleVisitor for Names<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.0.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.0.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let dims = param.val().dims().to_vec();
            self.out.push((self.path.name(self.prefix), dims));
        }
    }
    let mut v = Names {
        prefix,
        path: PathStack::default(),
        out: Vec::new(),
    };
    module.visit(&mut v);
    v.out
}

/// Append every float parameter of `module` to `out`, named by its path under `prefix`.
pub async fn export_module<M: Module>(
    prefix: &str,
    module: &M,
    out: &mut Vec<NamedTensor>,
) -> Result<(), DeviceError> {
    struct Collect<'a> {
        prefix: &'a str,
        path: PathStack,
        out: Vec<(String, Vec<usize>, Tensor<1>)>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.0.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.0.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val().inner();
            let shape = t.dims().to_vec();
            let name = self.path.name(self.prefix);
            self.out.push((name, shape, t.flatten::<1>(0, D - 1)));
        }
    }
    let mut c = Collect {
        prefix,
        path: PathStack::default(),
        out: Vec::new(),
    };
    module.visit(&mut c);
    for (name, shape, t) in c.out {
        out.push(NamedTensor {
            name,
            shape,
            data: read_f32(t).await?,
        });
    }
    Ok(())
}

/// Saved tensors by name, consumed by [`import_module`] and the host imports.
pub struct TensorStore {
    tensors: HashMap<String, NamedTensor>,
}

impl TensorStore {
    pub fn new(list: Vec<NamedTensor>) -> Self {
        Self {
            tensors: list.into_iter().map(|t| (t.name.clone(), t)).collect(),
        }
    }

    /// The values of `name`, which must have `shape`; the error names the tensor.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        match self.tensors.remove(name) {
            None => Err(format!("weights lack {name}")),
            Some(s) if s.shape == shape && s.data.len() == shape.iter().product::<usize>() => {
                Ok(s.data)
            }
            Some(s) => Err(format!(
                "{name}: saved shape {:?}, network has {shape:?}",
                s.shape
            )),
        }
    }

    /// Error when tensors are left over (weights of another architecture).
    pub fn finish(self) -> Result<(), String> {
        let mut left: Vec<&String> = self.tensors.keys().collect();
        left.sort();
        match left.first() {
            None => Ok(()),
            Some(k) => Err(format!("the weights have a tensor the network lacks: {k}")),
        }
    }
}

/// Replace every float parameter of `module` by the saved tensor of its path name under
/// `prefix` (shapes must match; the first mismatch or missing name is the error).
pub fn import_module<M: Module>(
    prefix: &str,
    module: M,
    store: &mut TensorStore,
) -> Result<M, String> {
    struct Load<'a> {
        prefix: &'a str,
        path: PathStack,
        store: &'a mut TensorStore,
        error: Option<String>,
    }
    impl ModuleMapper for Load<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.0.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.0.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let name = self.path.name(self.prefix);
            param.map(|t| {
                let dims = t.dims().to_vec();
                match self.store.take(&name, &dims) {
                    Ok(data) => {
                        let new = Tensor::<D>::from_data(TensorData::new(data, dims), &t.device());
                        if t.is_require_grad() {
                            new.require_grad()
                        } else {
                            new
                        }
                    }
                    Err(e) => {
                        self.error.get_or_insert(e);
                        t
                    }
                }
            })
        }
    }
    let mut load = Load {
        prefix,
        path: PathStack::default(),
        store,
        error: None,
    };
    let module = module.map(&mut load);
    match load.error {
        Some(e) => Err(e),
        None => Ok(module),
    }
}

/// Host parameters (`(name, shape, values)`) as named tensors under `prefix`.
pub fn named_host(prefix: &str, params: Vec<(String, Vec<usize>, &[f32])>) -> Vec<NamedTensor> {
    params
        .into_iter()
        .map(|(name, shape, v)| NamedTensor {
            name: format!("{prefix}.{name}"),
            shape,
            data: v.to_vec(),
        })
        .collect()
}

/// Fill host parameters (`(name, shape, slot)`) from `store` under `prefix`; all or nothing.
pub fn import_host(
    prefix: &str,
    params: Vec<(String, Vec<usize>, &mut Vec<f32>)>,
    store: &mut TensorStore,
) -> Result<(), String> {
    let mut loaded = Vec::with_capacity(params.len());
    for (name, shape, _) in &params {
        loaded.push(store.take(&format!("{prefix}.{name}"), shape)?);
    }
    for ((_, _, slot), v) in params.into_iter().zip(loaded) {
        *slot = v;
    }
    Ok(())
}
