//! Instances per function: cold start sharing, concurrency, idle reaping, recycling, back-off.
