//! Per-function log files with live tailing.
