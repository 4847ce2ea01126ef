//! Rules a function must satisfy beyond the syntax of its fields. The
//! loader reports a broken one at its position in the file, before
//! anything is uploaded; the server checks specs that reach it as JSON
//! with the same functions.

use crate::{Event, FunctionKind, FunctionSpec};

/// Why `runtime` is not a lambda runtime rouse runs, if it is not.
/// Whether its interpreter is installed is the server's question.
pub fn unsupported_runtime(runtime: &str) -> Option<String> {
    let known = runtime == "provided"
        || runtime.starts_with("provided.")
        || runtime.starts_with("python3")
        || runtime.starts_with("nodejs")
        || runtime.starts_with("ruby3");
    (!known).then(|| {
        format!(
            "runtime {runtime} is not supported; use provided.al2023 (your own bootstrap), python3.x, nodejsNN.x or ruby3.x"
        )
    })
}

/// Only a lambda handler can receive a scheduled event.
pub const SCHEDULE_NEEDS_LAMBDA: &str =
    "schedules need a lambda function (a handler receives the scheduled event)";

/// The rule a function breaks, named as the admin API's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub code: &'static str,
    pub message: String,
}

/// Checks a function that did not come through the loader.
pub fn check_function(f: &FunctionSpec) -> Result<(), Broken> {
    let scheduled = f.events.iter().any(|e| matches!(e, Event::Schedule { .. }));
    match &f.kind {
        FunctionKind::Web(_) if scheduled => Err(Broken {
            code: "InvalidSchedule",
            message: format!("function {}: {SCHEDULE_NEEDS_LAMBDA}", f.short_name),
        }),
        FunctionKind::Lambda(l) => match unsupported_runtime(&l.runtime) {
            Some(message) => Err(Broken {
                code: "UnsupportedRuntime",
                message: format!("function {}: {message}", f.short_name),
            }),
            None => Ok(()),
        },
        FunctionKind::Web(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes() {
        let table = [
            ("provided", true),
            ("provided.al2023", true),
            ("provided.al2", true),
            ("python3.12", true),
            ("python3", true),
            ("nodejs20.x", true),
            ("nodejs", true),
            ("ruby3.2", true),
            ("ruby3.3", true),
            ("ruby3.4", true),
            ("ruby2.7", false),
            ("go1.x", false),
            ("java21", false),
            ("python2.7", false),
            ("providedx", false),
            ("", false),
        ];
        for (runtime, ok) in table {
            assert_eq!(unsupported_runtime(runtime).is_none(), ok, "{runtime}");
        }
        assert_eq!(
            unsupported_runtime("go1.x").as_deref(),
            Some("runtime go1.x is not supported; use provided.al2023 (your own bootstrap), python3.x, nodejsNN.x or ruby3.x")
        );
    }
}
