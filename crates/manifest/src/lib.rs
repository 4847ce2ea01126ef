//! Loading `rouse.yaml` and `serverless.yml` into a [`DeploySpec`].

pub mod spec;

pub use spec::*;
