//! What a lambda instance is started with: the runtime's command and the
//! environment Lambda defines (§1.7 of the protocol notes). Pure, so the
//! exact variables are tested without starting anything.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

/// Account id in ARNs: rouse has no accounts, and SDKs only need the shape.
pub const ACCOUNT_ID: &str = "000000000000";
pub const REGION: &str = "us-east-1";

/// How an instance of `runtime` is started. `provided*` runtimes run the
/// artifact's own `bootstrap`; managed runtimes run the bootstrap rouse
/// ships, on the machine's interpreter.
pub(crate) fn runtime_command(runtime: &str, runtime_dir: &Path) -> Result<Vec<String>, String> {
    let shipped = |file: &str| runtime_dir.join(file).to_string_lossy().into_owned();
    if runtime == "provided" || runtime.starts_with("provided.") {
        Ok(vec!["./bootstrap".into()])
    } else if runtime.starts_with("python3") {
        Ok(vec!["python3".into(), "-u".into(), shipped("bootstrap.py")])
    } else if runtime.starts_with("nodejs") {
        Ok(vec!["node".into(), shipped("bootstrap.js")])
    } else if runtime.starts_with("ruby3") {
        Ok(vec!["ruby".into(), shipped("bootstrap.rb")])
    } else {
        Err(format!(
            "runtime {runtime} is not supported; use provided.al2023 (your own bootstrap), python3.x, nodejsNN.x or ruby3.x"
        ))
    }
}

/// The interpreter a managed runtime needs, if any.
pub(crate) fn interpreter(runtime: &str) -> Option<&'static str> {
    if runtime.starts_with("python3") {
        Some("python3")
    } else if runtime.starts_with("nodejs") {
        Some("node")
    } else if runtime.starts_with("ruby3") {
        Some("ruby")
    } else {
        None
    }
}

/// Checks at deploy time that the runtime can start here: a supported name,
/// and its interpreter on `path` (a `PATH` value).
pub fn check_runtime(runtime: &str, path: &str) -> Result<(), String> {
    runtime_command(runtime, Path::new("/"))?;
    let Some(program) = interpreter(runtime) else {
        return Ok(());
    };
    let found = std::env::split_paths(path).any(|dir| {
        let candidate = dir.join(program);
        std::fs::metadata(&candidate).is_ok_and(|m| m.is_file())
    });
    if found {
        Ok(())
    } else {
        Err(format!(
            "runtime {runtime} needs `{program}` on this server's PATH, and it is not installed"
        ))
    }
}

pub(crate) struct LambdaEnv<'a> {
    pub function: &'a str,
    pub handler: &'a str,
    pub runtime: &'a str,
    pub memory_mb: u32,
    pub runtime_api: &'a str,
    pub task_root: &'a Path,
    pub runtime_dir: &'a Path,
    pub instance_id: &'a str,
    pub now: SystemTime,
    /// `$LATEST`, or the number of a version run on its own (an alias or a
    /// qualified invoke pinned it), as Lambda reports them.
    pub version: &'a str,
}

/// The variables Lambda sets for a runtime process (the function's own
/// environment is added on top by the caller, reserved names last).
pub(crate) fn lambda_env(e: &LambdaEnv<'_>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };
    set("AWS_LAMBDA_RUNTIME_API", e.runtime_api.to_string());
    set("_HANDLER", e.handler.to_string());
    set("AWS_LAMBDA_FUNCTION_NAME", e.function.to_string());
    set("AWS_LAMBDA_FUNCTION_VERSION", e.version.to_string());
    set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", e.memory_mb.to_string());
    set(
        "AWS_LAMBDA_LOG_GROUP_NAME",
        format!("/aws/lambda/{}", e.function),
    );
    set(
        "AWS_LAMBDA_LOG_STREAM_NAME",
        log_stream_name(e.now, e.instance_id),
    );
    set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into());
    set("AWS_REGION", REGION.into());
    set("AWS_DEFAULT_REGION", REGION.into());
    set(
        "LAMBDA_TASK_ROOT",
        e.task_root.to_string_lossy().into_owned(),
    );
    set(
        "LAMBDA_RUNTIME_DIR",
        e.runtime_dir.to_string_lossy().into_owned(),
    );
    set("TZ", ":UTC".into());
    set("LANG", "en_US.UTF-8".into());
    // Unset on provided.* runtimes, as on Lambda; otherwise the runtime id
    // verbatim (`AWS_Lambda_python3.12`).
    if !e.runtime.starts_with("provided") {
        set("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", e.runtime));
    }
    env
}

/// `YYYY/MM/DD/[$LATEST]<32 hex>`, as Lambda names log streams.
fn log_stream_name(now: SystemTime, instance_id: &str) -> String {
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    let date = stamp.get(..10).unwrap_or("1970-01-01").replace('-', "/");
    format!("{date}/[$LATEST]{instance_id:0>32}")
}

/// `arn:aws:lambda:us-east-1:000000000000:function:NAME`.
pub fn function_arn(function: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn commands_per_runtime() {
        let dir = Path::new("/rt");
        assert_eq!(
            runtime_command("provided.al2023", dir).unwrap(),
            ["./bootstrap"]
        );
        assert_eq!(runtime_command("provided", dir).unwrap(), ["./bootstrap"]);
        assert_eq!(
            runtime_command("python3.12", dir).unwrap(),
            ["python3", "-u", "/rt/bootstrap.py"]
        );
        assert_eq!(
            runtime_command("nodejs20.x", dir).unwrap(),
            ["node", "/rt/bootstrap.js"]
        );
        assert_eq!(
            runtime_command("ruby3.2", dir).unwrap(),
            ["ruby", "/rt/bootstrap.rb"]
        );
        let err = runtime_command("java21", dir).unwrap_err();
        assert!(err.contains("java21") && err.contains("python3.x"), "{err}");
    }

    #[test]
    fn missing_interpreters_are_named() {
        assert!(check_runtime("provided.al2023", "").is_ok());
        let err = check_runtime("python3.12", "/nonexistent").unwrap_err();
        assert!(err.contains("python3"), "{err}");
        let err = check_runtime("ruby3.3", "/nonexistent").unwrap_err();
        assert!(err.contains("`ruby`"), "{err}");
        assert!(check_runtime("java21", "/usr/bin").is_err());
    }

    #[test]
    fn the_variables_lambda_defines() {
        let env = lambda_env(&LambdaEnv {
            function: "shop-dev-api",
            handler: "app.handler",
            runtime: "python3.12",
            memory_mb: 256,
            runtime_api: "127.0.0.1:5555",
            task_root: Path::new("/data/i/1"),
            runtime_dir: Path::new("/data/runtime"),
            instance_id: "abc",
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            version: "$LATEST",
        });
        let get = |k: &str| env.get(k).map(String::as_str);
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:5555"));
        assert_eq!(get("_HANDLER"), Some("app.handler"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME"), Some("shop-dev-api"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_VERSION"), Some("$LATEST"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("256"));
        assert_eq!(
            get("AWS_LAMBDA_LOG_GROUP_NAME"),
            Some("/aws/lambda/shop-dev-api")
        );
        assert_eq!(
            get("AWS_LAMBDA_LOG_STREAM_NAME"),
            Some("2023/11/14/[$LATEST]00000000000000000000000000000abc")
        );
        assert_eq!(get("LAMBDA_TASK_ROOT"), Some("/data/i/1"));
        assert_eq!(get("TZ"), Some(":UTC"));
        assert_eq!(get("AWS_EXECUTION_ENV"), Some("AWS_Lambda_python3.12"));
        assert_eq!(get("AWS_REGION"), Some("us-east-1"));
    }
}
