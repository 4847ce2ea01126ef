//! The public HTTP front door: routing and proxying to function instances.
