//! One module per subcommand.

pub mod alias;
pub mod completions;
pub mod deploy;
pub mod dev;
pub mod doctor;
pub mod env;
pub mod events;
pub mod init;
pub mod invoke;
pub mod logs;
pub mod ls;
pub mod package;
pub mod rm;
pub mod rollback;
pub mod serve;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}
