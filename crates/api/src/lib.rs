//! The admin API used by the CLI.
