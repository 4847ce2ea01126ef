//! Loading `rouse.yaml` and `serverless.yml` into a [`DeploySpec`].
//!
//! ```no_run
//! let loaded = rouse_manifest::load_dir(".".as_ref(), &Default::default())?;
//! for warning in &loaded.warnings {
//!     eprintln!("warning: {warning}");
//! }
//! println!("{} functions", loaded.spec.functions.len());
//! # Ok::<(), rouse_manifest::ManifestError>(())
//! ```

#![forbid(unsafe_code)]

mod api_policy;
mod async_invoke;
mod ctx;
mod error;
mod events;
mod function;
pub mod names;
pub mod policy;
#[cfg(test)]
mod policy_tests;
mod resolve;
pub mod rules;
mod scaling;
pub mod spec;
mod sqs_event;
#[cfg(test)]
mod sqs_tests;
mod stream_event;
#[cfg(test)]
mod stream_tests;
mod suggest;
mod template;
#[cfg(test)]
mod tests;
mod vars;
mod web;
mod yaml;

use std::path::{Path, PathBuf};

pub use error::ManifestError;
pub use policy::*;
pub use spec::*;
pub use stream_event::valid_stream_name;

/// File names looked for in a project directory, in order of preference.
pub const MANIFEST_NAMES: [&str; 4] = [
    "rouse.yaml",
    "rouse.yml",
    "serverless.yml",
    "serverless.yaml",
];

/// Settings that come from the command line rather than the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// `--stage`: overrides `provider.stage`.
    pub stage: Option<String>,
}

/// A manifest turned into a spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub spec: DeploySpec,
    /// Things that were accepted but deserve attention, each already in
    /// `file:line:column: message` form (e.g. Serverless settings rouse ignores).
    pub warnings: Vec<String>,
    /// The file that was read.
    pub path: PathBuf,
}

/// Which dialect a file is written in; decides how strict loading is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `rouse.yaml`: unknown keys are errors, no `${...}` variables.
    Rouse,
    /// `serverless.yml`: keys rouse does not support are warnings, and
    /// Serverless variables (`${self:...}`, `${opt:stage}`, `${env:...}`) are resolved.
    Serverless,
}

impl Flavor {
    /// `serverless.yml`, `serverless.prod.yaml`, ... are Serverless files;
    /// everything else is read as a rouse manifest.
    pub fn from_path(path: &Path) -> Flavor {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        if name.starts_with("serverless") {
            Flavor::Serverless
        } else {
            Flavor::Rouse
        }
    }
}

/// The manifest in `dir`: the first of [`MANIFEST_NAMES`] that exists.
pub fn find_manifest(dir: &Path) -> Result<PathBuf, ManifestError> {
    if !dir.is_dir() {
        return Err(ManifestError::whole_file(
            dir.display().to_string(),
            "not a directory",
        ));
    }
    MANIFEST_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            ManifestError::whole_file(
                dir.display().to_string(),
                format!(
                    "no manifest found; looked for {}",
                    MANIFEST_NAMES.join(", ")
                ),
            )
        })
}

/// Finds the manifest in `dir` and loads it. When a directory has both a
/// rouse manifest and a Serverless one, the rouse one wins, with a warning.
pub fn load_dir(dir: &Path, opts: &LoadOptions) -> Result<Loaded, ManifestError> {
    let path = find_manifest(dir)?;
    let mut loaded = load_file(&path, opts)?;
    let others: Vec<&str> = MANIFEST_NAMES
        .iter()
        .copied()
        .filter(|name| dir.join(name) != path && dir.join(name).is_file())
        .collect();
    if !others.is_empty() {
        loaded.warnings.push(format!(
            "{}: also found {}, which {} ignored",
            path.display(),
            others.join(", "),
            if others.len() == 1 { "is" } else { "are" }
        ));
    }
    Ok(loaded)
}

/// Loads one manifest file; its name decides the [`Flavor`].
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Loaded, ManifestError> {
    let file = path.display().to_string();
    let source = std::fs::read(path)
        .map_err(|e| ManifestError::whole_file(&file, format!("cannot read: {e}")))?;
    let source = String::from_utf8(source)
        .map_err(|_| ManifestError::whole_file(&file, "not valid UTF-8 text"))?;
    let mut loaded = parse_str(&source, &file, Flavor::from_path(path), opts)?;
    loaded.path = path.to_path_buf();
    Ok(loaded)
}

/// Loads a manifest held in memory; `file_name` is used in messages and as
/// [`Loaded::path`].
pub fn parse_str(
    source: &str,
    file_name: &str,
    flavor: Flavor,
    opts: &LoadOptions,
) -> Result<Loaded, ManifestError> {
    parse_with_env(source, file_name, flavor, opts, &|name| {
        std::env::var(name).ok()
    })
}

/// [`parse_str`] with the process environment replaced, for `${env:...}` tests.
pub(crate) fn parse_with_env(
    source: &str,
    file_name: &str,
    flavor: Flavor,
    opts: &LoadOptions,
    env: vars::EnvLookup<'_>,
) -> Result<Loaded, ManifestError> {
    let root = yaml::parse(source, file_name)?;
    let (spec, warnings) = resolve::resolve(&root, file_name, flavor, opts, env)?;
    Ok(Loaded {
        spec,
        warnings,
        path: PathBuf::from(file_name),
    })
}
