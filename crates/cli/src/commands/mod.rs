//! One module per subcommand.

pub(crate) mod alias;
pub(crate) mod completions;
pub(crate) mod deploy;
pub(crate) mod dev;
pub(crate) mod doctor;
pub(crate) mod env;
pub(crate) mod events;
pub(crate) mod init;
pub(crate) mod invoke;
pub(crate) mod keys;
pub(crate) mod logs;
pub(crate) mod ls;
pub(crate) mod nodes;
pub(crate) mod package;
pub(crate) mod place;
pub(crate) mod rm;
pub(crate) mod rollback;
pub(crate) mod sd_notify;
pub(crate) mod serve;
pub(crate) mod serve_limits;
pub(crate) mod streams;
pub(crate) mod versions;

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Output {
    Text,
    Json,
}
