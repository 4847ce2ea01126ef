//! `rouse package DIR --target aws-lambda`: the same web app as a deployment
//! zip for real AWS Lambda.
//!
//! The zip holds the project files (chosen as `rouse deploy` chooses them,
//! `.rouseignore` included), `rouse-adapter` as `bootstrap`, and `run.sh`
//! with the web function's command. Nothing else is needed: the adapter runs
//! `./run.sh` when it gets no command, and Lambda configuration only has to
//! carry what the manifest says about the port and readiness.
//!
//! On `provided.al2023` the adapter is the runtime itself. Python and Node
//! apps need Lambda's managed runtime for their interpreter; the printed
//! command then picks it and makes the adapter its `AWS_LAMBDA_EXEC_WRAPPER`,
//! which takes the place of the runtime's own bootstrap.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use flate2::read::GzDecoder;
use rouse_manifest::{FunctionKind, FunctionSpec, LoadOptions, WebSpec};
use serde_json::json;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// The adapter's file name, next to the `rouse` binary.
const ADAPTER: &str = "rouse-adapter";
/// Where Lambda looks for a custom runtime.
const BOOTSTRAP: &str = "bootstrap";
/// The app's command line, which the adapter runs when given none.
const RUN_SCRIPT: &str = "run.sh";

/// Platforms `rouse package` builds for.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Target {
    /// A zip for `aws lambda create-function --runtime provided.al2023`.
    AwsLambda,
}

pub(crate) fn run(
    dir: &Path,
    target: Target,
    out: Option<PathBuf>,
    function: Option<String>,
    stage: Option<String>,
) -> anyhow::Result<ExitCode> {
    let Target::AwsLambda = target;
    let loaded = rouse_manifest::load_dir(dir, &LoadOptions { stage })?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let spec = loaded.spec;
    let (function, web) = pick_web_function(&spec.functions, function.as_deref())?;
    if !web.rewrite.is_empty() {
        let files: Vec<&str> = web.rewrite.iter().map(|r| r.file.as_str()).collect();
        eprintln!(
            "warning: `rewrite` rules are not applied in the package (Lambda's code directory is read-only); \
             {} must already make the app listen on $PORT",
            files.join(", ")
        );
    }

    let adapter_path = adapter_path()?;
    let adapter =
        fs::read(&adapter_path).with_context(|| format!("reading {}", adapter_path.display()))?;
    let (script, skipped) = run_script(&spec.service, &spec.stage, function, web);
    for name in skipped {
        eprintln!("warning: environment variable {name:?} is not a shell name; it is left out of {RUN_SCRIPT}");
    }
    let ignores = rouse_store::archive::read_ignore_file(dir)?;
    let archive = rouse_store::archive::pack_dir(dir, &ignores, &mut |_| {})
        .context("packaging the project")?;
    let zip = build_zip(&archive, &adapter, &script)?;

    let out = out.unwrap_or_else(|| PathBuf::from(format!("{}.zip", function.name)));
    write_atomically(&out, &zip)?;
    println!(
        "Packaged {} for AWS Lambda: {} ({} bytes)",
        function.name,
        out.display(),
        zip.len()
    );
    println!("  bootstrap = {}", adapter_path.display());
    println!("  {RUN_SCRIPT} = {}", web.command.join(" "));
    if is_dynamically_linked(&adapter) {
        println!(
            "Note: the adapter links the C library dynamically; Lambda's provided.al2023 has glibc 2.34. \
             If this machine's is newer, build it with `cargo build --release -p rouse-adapter \
             --target {}-unknown-linux-musl` and copy it next to `rouse`.",
            std::env::consts::ARCH
        );
    }
    println!("\nNext:\n{}", create_function_command(function, web, &out));
    Ok(ExitCode::SUCCESS)
}

/// The web function to package: the one named, or the manifest's only one.
fn pick_web_function<'a>(
    functions: &'a [FunctionSpec],
    name: Option<&str>,
) -> anyhow::Result<(&'a FunctionSpec, &'a WebSpec)> {
    let web = |f: &'a FunctionSpec| match &f.kind {
        FunctionKind::Web(web) => Some((f, web)),
        FunctionKind::Lambda(_) => None,
    };
    if let Some(name) = name {
        let Some(found) = functions
            .iter()
            .find(|f| f.short_name == name || f.name == name)
        else {
            bail!("the manifest has no function {name:?}");
        };
        return web(found).with_context(|| {
            format!("{name} is a lambda function; `rouse package --target aws-lambda` packages web functions (a lambda handler deploys to AWS as it is)")
        });
    }
    let webs: Vec<_> = functions.iter().filter_map(web).collect();
    match webs.as_slice() {
        [one] => Ok(*one),
        [] => bail!("the manifest has no web function to package (`web: {{ command: [...] }}`)"),
        many => {
            let names: Vec<&str> = many.iter().map(|(f, _)| f.short_name.as_str()).collect();
            bail!(
                "the manifest has several web functions ({}); choose one with --function",
                names.join(", ")
            )
        }
    }
}

/// `rouse-adapter` beside the running `rouse` (both come out of one
/// `cargo build`, and one release archive).
fn adapter_path() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the rouse binary")?;
    let path = exe.with_file_name(ADAPTER);
    if path.is_file() {
        Ok(path)
    } else {
        bail!(
            "{ADAPTER} was not found next to {} (looked for {}); build it with \
             `cargo build --release -p rouse-adapter` (or `cargo build --workspace`) so it sits beside `rouse`",
            exe.display(),
            path.display()
        )
    }
}

/// `run.sh`: the manifest's environment as defaults (a variable set in the
/// Lambda configuration wins), then the command. `${PORT}` and the
/// environment's own names in arguments expand at run time, as rouse
/// substitutes them; everything else is quoted literally. Returns the
/// environment names that could not be written (not shell names).
fn run_script(
    service: &str,
    stage: &str,
    function: &FunctionSpec,
    web: &WebSpec,
) -> (String, Vec<String>) {
    let (names, skipped): (Vec<&String>, Vec<&String>) = function
        .environment
        .keys()
        .partition(|name| is_shell_name(name));
    let mut expandable: BTreeSet<&str> = names.iter().map(|n| n.as_str()).collect();
    expandable.insert("PORT");

    let mut script = format!(
        "#!/bin/sh\n\
         # Written by `rouse package`: starts web function {} of service {} (stage {}).\n\
         # rouse-adapter, this package's bootstrap, runs it with PORT set to the port it calls.\n",
        function.short_name, service, stage
    );
    for name in &names {
        let value = &function.environment[name.as_str()];
        script.push_str(&format!(
            "[ -n \"${{{name}+x}}\" ] || export {name}={}\n",
            single_quoted(value)
        ));
    }
    let words: Vec<String> = web
        .command
        .iter()
        .map(|arg| shell_word(arg, &expandable))
        .collect();
    script.push_str(&format!("exec {}\n", words.join(" ")));
    (script, skipped.into_iter().cloned().collect())
}

fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One argument as shell text: literal runs single-quoted, `${NAME}` of an
/// expandable name left to the shell.
fn shell_word(arg: &str, expandable: &BTreeSet<&str>) -> String {
    let mut word = String::new();
    let mut literal = String::new();
    let mut rest = arg;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}').map(|end| &after[..end]) {
            Some(name) if expandable.contains(name) => {
                literal.push_str(&rest[..start]);
                if !literal.is_empty() {
                    word.push_str(&single_quoted(&literal));
                    literal.clear();
                }
                word.push_str(&format!("\"${{{name}}}\""));
                rest = &after[name.len() + 1..];
            }
            _ => {
                literal.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() || word.is_empty() {
        word.push_str(&single_quoted(&literal));
    }
    word
}

fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The zip: every entry of the deploy archive (so the same files, modes and
/// symlinks), then `bootstrap` and `run.sh`, both executable. Entries carry
/// no timestamps of their own, so the same tree gives the same zip.
fn build_zip(archive: &[u8], adapter: &[u8], script: &str) -> anyhow::Result<Vec<u8>> {
    let options = |mode: u32| {
        SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .unix_permissions(mode)
    };
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let mut tar = tar::Archive::new(GzDecoder::new(archive));
    for entry in tar.entries().context("reading the project archive")? {
        let mut entry = entry.context("reading the project archive")?;
        let path = entry.path()?.to_string_lossy().into_owned();
        if path == BOOTSTRAP || path == RUN_SCRIPT {
            bail!(
                "the project has its own {path}, and the package needs that name for rouse-adapter; \
                 rename it or list it in .rouseignore"
            );
        }
        let mode = entry.header().mode()? & 0o777;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            zip.add_directory(path, options(mode))?;
        } else if kind.is_file() {
            zip.start_file(path, options(mode))?;
            io::copy(&mut entry, &mut zip)?;
        } else if kind.is_symlink() {
            let target = entry
                .link_name()?
                .with_context(|| format!("symlink {path} has no target"))?;
            zip.add_symlink(path, target.to_string_lossy(), options(mode))?;
        } else {
            bail!("{path}: the packer produced an entry that is not a file, directory or symlink");
        }
    }
    zip.start_file(BOOTSTRAP, options(0o755))?;
    zip.write_all(adapter)?;
    zip.start_file(RUN_SCRIPT, options(0o755))?;
    zip.write_all(script.as_bytes())?;
    Ok(zip.finish()?.into_inner())
}

/// Writes beside the target and renames, so a failed run never leaves a
/// half-written zip under the final name.
fn write_atomically(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    fs::rename(&partial, out).with_context(|| format!("writing {}", out.display()))
}

/// An ELF with a program interpreter (`ld-linux…`) needs the C library of
/// the machine it runs on; it sits in the first page of the file.
fn is_dynamically_linked(binary: &[u8]) -> bool {
    let head = &binary[..binary.len().min(4096)];
    head.windows(8).any(|w| w == b"ld-linux")
}

/// The managed Lambda runtime an app's command needs for its interpreter
/// (`provided.al2023` has neither Python nor Node), judged by the program
/// name (or the first word of an `sh -c` line); `None` for anything else.
fn managed_runtime(command: &[String]) -> Option<&'static str> {
    let program = match command {
        [shell, flag, line, ..] if (shell == "sh" || shell == "bash") && flag == "-c" => {
            line.split_whitespace().next().unwrap_or_default()
        }
        [program, ..] => program.as_str(),
        [] => "",
    };
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.starts_with("python") || ["gunicorn", "uvicorn", "hypercorn"].contains(&name.as_str()) {
        Some("python3.13")
    } else if ["node", "npm", "npx"].contains(&name.as_str()) {
        Some("nodejs22.x")
    } else {
        None
    }
}

/// The `aws` commands that create the function from the zip and give it a
/// public URL. On a managed runtime the adapter runs as the runtime's exec
/// wrapper, in place of the runtime's own bootstrap.
fn create_function_command(function: &FunctionSpec, web: &WebSpec, zip: &Path) -> String {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    };
    let timeout = function.timeout_secs.ceil().clamp(1.0, 900.0) as u64;
    let memory = function.memory_size.clamp(128, 10_240);
    let runtime = managed_runtime(&web.command);
    let mut adapter_env = serde_json::Map::new();
    if runtime.is_some() {
        adapter_env.insert(
            "AWS_LAMBDA_EXEC_WRAPPER".into(),
            json!(format!("/var/task/{BOOTSTRAP}")),
        );
    }
    if let Some(port) = web.port {
        adapter_env.insert("PORT".into(), json!(port.to_string()));
    }
    if let Some(path) = &web.readiness.path {
        adapter_env.insert("ROUSE_ADAPTER_READINESS_PATH".into(), json!(path));
    }
    let mut lines = vec![
        "aws lambda create-function".to_owned(),
        format!("  --function-name {}", function.name),
        format!(
            "  --runtime {} --handler {RUN_SCRIPT}",
            runtime.unwrap_or("provided.al2023")
        ),
        format!("  --architectures {arch} --memory-size {memory} --timeout {timeout}"),
        format!(
            "  --zip-file {}",
            single_quoted(&format!("fileb://{}", zip.display()))
        ),
        "  --role arn:aws:iam::ACCOUNT_ID:role/LAMBDA_EXECUTION_ROLE".to_owned(),
    ];
    if !adapter_env.is_empty() {
        let variables = json!({ "Variables": adapter_env }).to_string();
        lines.push(format!("  --environment {}", single_quoted(&variables)));
    }
    let create = lines.join(" \\\n");
    format!(
        "{create}\n\
         # a public HTTPS URL for it:\n\
         aws lambda create-function-url-config --function-name {name} --auth-type NONE\n\
         aws lambda add-permission --function-name {name} --statement-id public-url \\\n  \
         --action lambda:InvokeFunctionUrl --principal '*' --function-url-auth-type NONE",
        name = function.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> Vec<FunctionSpec> {
        rouse_manifest::parse_str(
            yaml,
            "rouse.yaml",
            rouse_manifest::Flavor::Rouse,
            &LoadOptions::default(),
        )
        .expect("manifest")
        .spec
        .functions
    }

    const TWO_WEB: &str = "service: s\nfunctions:\n  a:\n    web: { command: [./a] }\n  b:\n    web: { command: [./b] }\n  l:\n    runtime: python3.12\n    handler: app.handler\n";

    #[test]
    fn picks_the_web_function() {
        let functions = spec(TWO_WEB);
        assert_eq!(
            pick_web_function(&functions, Some("b"))
                .unwrap()
                .0
                .short_name,
            "b"
        );
        assert_eq!(
            pick_web_function(&functions, Some("s-dev-a"))
                .unwrap()
                .0
                .short_name,
            "a"
        );
        let err = pick_web_function(&functions, None).unwrap_err().to_string();
        assert!(err.contains("a, b") && err.contains("--function"), "{err}");
        let err = pick_web_function(&functions, Some("l"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lambda function"), "{err}");
        assert!(pick_web_function(&functions, Some("zz")).is_err());
        let one = spec("service: s\nfunctions:\n  w:\n    web: { command: [./w] }\n");
        assert_eq!(pick_web_function(&one, None).unwrap().0.short_name, "w");
    }

    #[test]
    fn shell_words_quote_literally_but_expand_known_names() {
        let names: BTreeSet<&str> = ["PORT", "ROOT"].into();
        let cases = [
            ("python3", "'python3'"),
            ("", "''"),
            ("it's", r"'it'\''s'"),
            ("--port=${PORT}", "'--port='\"${PORT}\""),
            ("${PORT}", "\"${PORT}\""),
            ("${ROOT}/www:${PORT}", "\"${ROOT}\"'/www:'\"${PORT}\""),
            ("$HOME ${OTHER} `x` $(y)", "'$HOME ${OTHER} `x` $(y)'"),
            ("${PORT", "'${PORT'"),
        ];
        for (arg, expected) in cases {
            assert_eq!(shell_word(arg, &names), expected, "{arg}");
        }
    }

    #[test]
    fn run_script_exports_defaults_and_execs_the_command() {
        let functions = spec(
            "service: shop\nprovider: { environment: { GREETING: \"it's me\" } }\nfunctions:\n  site:\n    environment: { \"bad-name\": x }\n    web: { command: [\"nginx\", \"-g\", \"listen ${PORT};\"] }\n",
        );
        let (f, web) = pick_web_function(&functions, None).unwrap();
        let (script, skipped) = run_script("shop", "dev", f, web);
        assert_eq!(skipped, ["bad-name"]);
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(
            script.contains("[ -n \"${GREETING+x}\" ] || export GREETING='it'\\''s me'\n"),
            "{script}"
        );
        assert!(
            script.ends_with("exec 'nginx' '-g' 'listen '\"${PORT}\"';'\n"),
            "{script}"
        );
    }

    /// The script runs under /bin/sh as intended: defaults, overrides, quoting.
    #[test]
    fn run_script_runs() {
        let functions = spec(
            "service: s\nprovider: { environment: { A: \"a b\", B: default } }\nfunctions:\n  w:\n    web: { command: [\"sh\", \"-c\", \"echo \\\"$A|$B|$0\\\"\", \"${PORT}\"] }\n",
        );
        let (f, web) = pick_web_function(&functions, None).unwrap();
        let (script, _) = run_script("s", "dev", f, web);
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .env("PORT", "8123")
            .env("B", "override")
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b|override|8123\n");
    }

    #[test]
    fn create_function_command_carries_port_and_readiness() {
        let functions = spec(
            "service: s\nfunctions:\n  w:\n    timeout: 2.5\n    memorySize: 64\n    web: { command: [./w], port: 8000, readiness: { path: /healthz } }\n",
        );
        let (f, web) = pick_web_function(&functions, None).unwrap();
        let text = create_function_command(f, web, Path::new("out dir/w.zip"));
        assert!(text.contains("--function-name s-dev-w"), "{text}");
        assert!(text.contains("--runtime provided.al2023"), "{text}");
        assert!(text.contains("--memory-size 128 --timeout 3"), "{text}");
        assert!(
            text.contains("--zip-file 'fileb://out dir/w.zip'"),
            "{text}"
        );
        assert!(
            text.contains(r#"--environment '{"Variables":{"PORT":"8000","ROUSE_ADAPTER_READINESS_PATH":"/healthz"}}'"#),
            "{text}"
        );
        assert!(text.contains("create-function-url-config"), "{text}");
    }

    #[test]
    fn interpreted_apps_get_a_managed_runtime_with_the_adapter_as_wrapper() {
        let argv = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let cases = [
            (argv(&["python3", "-u", "app.py"]), Some("python3.13")),
            (argv(&["/usr/bin/python3.12", "app.py"]), Some("python3.13")),
            (argv(&["gunicorn", "app:app"]), Some("python3.13")),
            (argv(&["node", "server.js"]), Some("nodejs22.x")),
            (argv(&["sh", "-c", "npm start"]), Some("nodejs22.x")),
            (argv(&["./server", "--port", "${PORT}"]), None),
            (argv(&["nginx", "-c", "nginx.conf"]), None),
        ];
        for (command, expected) in cases {
            assert_eq!(managed_runtime(&command), expected, "{command:?}");
        }
        let functions =
            spec("service: s\nfunctions:\n  w:\n    web: { command: [python3, app.py] }\n");
        let (f, web) = pick_web_function(&functions, None).unwrap();
        let text = create_function_command(f, web, Path::new("w.zip"));
        assert!(
            text.contains("--runtime python3.13 --handler run.sh"),
            "{text}"
        );
        assert!(
            text.contains(r#"{"Variables":{"AWS_LAMBDA_EXEC_WRAPPER":"/var/task/bootstrap"}}"#),
            "{text}"
        );
    }

    #[test]
    fn zip_holds_the_tree_bootstrap_and_script() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("app.py"), "print('hi')\n").unwrap();
        fs::create_dir(dir.path().join("static")).unwrap();
        fs::write(dir.path().join("static/logo.png"), b"\x89PNG").unwrap();
        fs::write(dir.path().join("tool"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(dir.path().join("tool"), fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("app.py", dir.path().join("main.py")).unwrap();
        fs::create_dir(dir.path().join("__pycache__")).unwrap();
        fs::write(dir.path().join("__pycache__/x.pyc"), "").unwrap();
        let archive = rouse_store::archive::pack_dir(dir.path(), &[], &mut |_| {}).unwrap();
        let zip = build_zip(&archive, b"\x7fELF adapter", "#!/bin/sh\nexec x\n").unwrap();

        let mut read = zip::ZipArchive::new(Cursor::new(zip.clone())).unwrap();
        let mut names: Vec<String> = read.file_names().map(str::to_owned).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "app.py",
                "bootstrap",
                "main.py",
                "run.sh",
                "static/",
                "static/logo.png",
                "tool"
            ]
        );
        let mode = |read: &mut zip::ZipArchive<Cursor<Vec<u8>>>, name: &str| {
            read.by_name(name).unwrap().unix_mode().unwrap() & 0o777
        };
        assert_eq!(mode(&mut read, "bootstrap"), 0o755);
        assert_eq!(mode(&mut read, "run.sh"), 0o755);
        assert_eq!(mode(&mut read, "tool"), 0o750);
        assert!(read.by_name("main.py").unwrap().is_symlink());
        let mut png = Vec::new();
        io::Read::read_to_end(&mut read.by_name("static/logo.png").unwrap(), &mut png).unwrap();
        assert_eq!(png, b"\x89PNG");
        // Same tree, same bytes.
        assert_eq!(
            build_zip(&archive, b"\x7fELF adapter", "#!/bin/sh\nexec x\n").unwrap(),
            zip
        );

        fs::write(dir.path().join("bootstrap"), "mine").unwrap();
        let archive = rouse_store::archive::pack_dir(dir.path(), &[], &mut |_| {}).unwrap();
        let err = build_zip(&archive, b"", "").unwrap_err().to_string();
        assert!(err.contains("bootstrap"), "{err}");
    }
}
