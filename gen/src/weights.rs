//! Named weights: read from safetensors (checked by name and shape), or
//! made fresh from semid's seeded generator for training; written back to
//! safetensors under the same names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};

use crate::error::{Error, Result};

/// Where a model's tensors come from.
pub(crate) enum Source {
    /// A checkpoint's tensors by name.
    File {
        path: PathBuf,
        tensors: HashMap<String, Tensor>,
    },
    /// Fresh trainable weights (normal-like, standard deviation given per
    /// tensor), seeded.
    Fresh { stream: u64 },
}

/// A model's weights as they are built: every tensor handed out is kept
/// by name (for saving) and, when fresh, as a trainable [`Var`].
pub(crate) struct Weights {
    source: Source,
    pub named: Vec<(String, Tensor)>,
    pub vars: Vec<Var>,
}

impl Weights {
    /// Fresh weights from `seed`.
    pub fn fresh(seed: u64) -> Weights {
        Weights {
            source: Source::Fresh {
                stream: seed.wrapping_mul(1000),
            },
            named: Vec::new(),
            vars: Vec::new(),
        }
    }

    /// The tensors of a safetensors file, as f32.
    pub fn read(path: &Path) -> Result<Weights> {
        let tensors =
            candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| Error::File {
                path: path.to_path_buf(),
                reason: format!("not a readable safetensors file ({e})"),
            })?;
        let tensors = tensors
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?)))
            .collect::<Result<_>>()?;
        Ok(Weights {
            source: Source::File {
                path: path.to_path_buf(),
                tensors,
            },
            named: Vec::new(),
            vars: Vec::new(),
        })
    }

    /// The file's tensors by name (empty for fresh weights).
    pub fn tensors(&self) -> &HashMap<String, Tensor> {
        static EMPTY: std::sync::OnceLock<HashMap<String, Tensor>> = std::sync::OnceLock::new();
        match &self.source {
            Source::File { tensors, .. } => tensors,
            Source::Fresh { .. } => EMPTY.get_or_init(HashMap::new),
        }
    }

    /// Whether these are fresh weights (not read from a file).
    pub fn is_fresh(&self) -> bool {
        matches!(self.source, Source::Fresh { .. })
    }

    /// Whether the checkpoint holds `name` (fresh weights hold everything).
    pub fn has(&self, name: &str) -> bool {
        match &self.source {
            Source::File { tensors, .. } => tensors.contains_key(name),
            Source::Fresh { .. } => true,
        }
    }

    /// The tensor `name` of shape `dims`: from the file (an error names
    /// the tensor and both shapes when it is missing or misshapen), or
    /// fresh with values of standard deviation `std` (`None`: all ones).
    pub fn get(&mut self, name: &str, dims: &[usize], std: Option<f32>) -> Result<Tensor> {
        let t = match &mut self.source {
            Source::File { path, tensors } => {
                let t = tensors.get(name).ok_or_else(|| Error::File {
                    path: path.clone(),
                    reason: format!(
                        "tensor {name:?} is missing (expected shape {dims:?}); is this checkpoint of the architecture its config.json names?"
                    ),
                })?;
                if t.dims() != dims {
                    return Err(Error::File {
                        path: path.clone(),
                        reason: format!(
                            "tensor {name:?} has shape {:?}; the config asks for {dims:?}",
                            t.dims()
                        ),
                    });
                }
                t.clone()
            }
            Source::Fresh { stream } => {
                *stream += 1;
                let n: usize = dims.iter().product();
                let t = match std {
                    Some(s) => {
                        // Uniform of the given standard deviation.
                        let a = s * 3f32.sqrt();
                        let v = semid::synthetic::uniform(n, -a, a, *stream);
                        Tensor::from_vec(v, dims, &Device::Cpu)?
                    }
                    None => Tensor::ones(dims, DType::F32, &Device::Cpu)?,
                };
                let var = Var::from_tensor(&t)?;
                self.vars.push(var.clone());
                var.as_tensor().clone()
            }
        };
        self.named.push((name.to_string(), t.clone()));
        Ok(t)
    }

    /// The file's tensor names that were never asked for.
    pub fn unused(&self) -> Vec<String> {
        match &self.source {
            Source::File { tensors, .. } => {
                let mut out: Vec<String> = tensors
                    .keys()
                    .filter(|k| !self.named.iter().any(|(n, _)| n == *k))
                    .cloned()
                    .collect();
                out.sort();
                out
            }
            Source::Fresh { .. } => Vec::new(),
        }
    }
}

/// Writes `named` tensors to a safetensors file (each name once).
pub(crate) fn save(named: &[(String, Tensor)], path: &Path) -> Result<()> {
    let mut map: HashMap<String, Tensor> = HashMap::new();
    for (n, t) in named {
        map.entry(n.clone()).or_insert_with(|| t.clone());
    }
    candle_core::safetensors::save(&map, path).map_err(|e| Error::File {
        path: path.to_path_buf(),
        reason: format!("could not be written ({e})"),
    })
}

/// Reads and parses a JSON file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::File {
        path: path.to_path_buf(),
        reason: format!("not valid JSON for this model ({e})"),
    })
}

/// Writes a value as pretty JSON.
pub(crate) fn write_json<T: serde::Serialize>(value: &T, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::File {
        path: path.to_path_buf(),
        reason: format!("could not be serialised ({e})"),
    })?;
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}
