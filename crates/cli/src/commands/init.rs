//! `rouse init [TEMPLATE] [DIR]`: a new project from one of the examples.
//!
//! The templates are the repository's `examples/`, embedded at build time,
//! so the tests that deploy the examples also cover what `init` writes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::exit;

pub(crate) struct Template {
    /// The name of its directory under `examples/`.
    pub name: &'static str,
    /// Names it had before templates were named after the examples; still
    /// accepted.
    pub aliases: &'static [&'static str],
    pub summary: &'static str,
    /// Paths relative to the project, with their content.
    pub files: &'static [(&'static str, &'static [u8])],
    /// What to run before `rouse dev` (a build), if anything.
    pub build: Option<&'static str>,
}

/// The template `rouse init` suggests when asked for none.
pub(crate) const DEFAULT_TEMPLATE: &str = "python-web";

/// One embedded example file: `(path, bytes)`.
macro_rules! example_file {
    ($example:literal, $path:literal) => {
        (
            $path,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../examples/",
                $example,
                "/",
                $path
            )) as &[u8],
        )
    };
}

pub(crate) const TEMPLATES: &[Template] = &[
    Template {
        name: "python-web",
        aliases: &[],
        summary: "a plain Python web app (stdlib only) as a scale-to-zero web function",
        files: &[
            example_file!("python-web", "rouse.yaml"),
            example_file!("python-web", "app.py"),
        ],
        build: None,
    },
    Template {
        name: "python-lambda",
        aliases: &["python"],
        summary: "a Python Lambda handler (python3.12) behind HTTP routes",
        files: &[
            example_file!("python-lambda", "rouse.yaml"),
            example_file!("python-lambda", "app.py"),
        ],
        build: None,
    },
    Template {
        name: "node-lambda",
        aliases: &["node"],
        summary: "a Node.js Lambda handler (nodejs20.x, ES module) behind HTTP routes",
        files: &[
            example_file!("node-lambda", "rouse.yaml"),
            example_file!("node-lambda", "index.mjs"),
        ],
        build: None,
    },
    Template {
        name: "rust-lambda",
        aliases: &["rust"],
        summary: "a Rust Lambda function on lambda_runtime (provided.al2023 `bootstrap`)",
        files: &[
            example_file!("rust-lambda", "rouse.yaml"),
            example_file!("rust-lambda", "Cargo.toml"),
            example_file!("rust-lambda", "src/main.rs"),
        ],
        build: Some("cargo build --release && cp target/release/bootstrap ."),
    },
    Template {
        name: "nginx-site",
        aliases: &["nginx-static"],
        summary: "a static site served by stock nginx with an unmodified nginx.conf",
        files: &[
            example_file!("nginx-site", "rouse.yaml"),
            example_file!("nginx-site", "nginx.conf"),
            example_file!("nginx-site", "site/index.html"),
        ],
        build: None,
    },
];

pub(crate) fn run(template: Option<String>, dir: &Path) -> anyhow::Result<ExitCode> {
    let Some(name) = template else {
        print_templates();
        return Ok(ExitCode::SUCCESS);
    };
    let Some(template) = find(&name) else {
        return Err(exit::not_found(format!(
            "no template {name:?}; `rouse init` lists them: {}",
            template_names().join(", ")
        )));
    };
    let service = service_name(dir)?;
    let written = write_project(template, dir, &service)?;
    println!(
        "Created {} ({} template, service {service}):",
        dir.display(),
        template.name
    );
    for path in &written {
        println!("  {}", path.display());
    }
    let cd = if dir == Path::new(".") {
        String::new()
    } else {
        format!("cd {} && ", dir.display())
    };
    let build = template
        .build
        .map(|b| format!("{b} && "))
        .unwrap_or_default();
    println!("Next: {cd}{build}rouse dev");
    println!("  (or, with a server running: {cd}{build}rouse deploy)");
    Ok(ExitCode::SUCCESS)
}

fn print_templates() {
    println!("Templates (rouse init TEMPLATE [DIR]):");
    for t in TEMPLATES {
        let marker = if t.name == DEFAULT_TEMPLATE {
            " (default)"
        } else {
            ""
        };
        println!("  {:<13} {}{marker}", t.name, t.summary);
    }
    println!("Start with: rouse init {DEFAULT_TEMPLATE} my-app");
}

/// The template called `name` or once called so.
pub(crate) fn find(name: &str) -> Option<&'static Template> {
    TEMPLATES
        .iter()
        .find(|t| t.name == name || t.aliases.contains(&name))
}

fn template_names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|t| t.name).collect()
}

/// Writes the template's files into `dir`, with the manifest's service named
/// `service`. Refuses, before writing anything, if any of them exists.
fn write_project(template: &Template, dir: &Path, service: &str) -> anyhow::Result<Vec<PathBuf>> {
    let existing: Vec<String> = template
        .files
        .iter()
        .filter(|(path, _)| dir.join(path).symlink_metadata().is_ok())
        .map(|(path, _)| path.to_string())
        .collect();
    if !existing.is_empty() {
        bail!(
            "{} already has {}; nothing was written (pick an empty or new directory)",
            dir.display(),
            existing.join(", ")
        );
    }
    let mut written = Vec::new();
    for (path, content) in template.files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let content = if *path == "rouse.yaml" {
            rename_service(content, service)?
        } else {
            content.to_vec()
        };
        std::fs::write(&target, content)
            .with_context(|| format!("writing {}", target.display()))?;
        written.push(target);
    }
    Ok(written)
}

/// Replaces the value of the manifest's top-level `service:` line.
fn rename_service(manifest: &[u8], service: &str) -> anyhow::Result<Vec<u8>> {
    let text = std::str::from_utf8(manifest).context("the template manifest is not UTF-8")?;
    let mut found = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if !found && line.starts_with("service:") {
            found = true;
            out.push_str(&format!("service: {service}\n"));
        } else {
            out.push_str(line);
        }
    }
    if !found {
        bail!("the template manifest has no `service:` line");
    }
    Ok(out.into_bytes())
}

/// The project is named after its directory, made into a valid service name
/// (letters, digits and `-`, starting with a letter).
fn service_name(dir: &Path) -> anyhow::Result<String> {
    let resolved = if dir.exists() {
        dir.canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))?
    } else {
        std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?
    };
    let base = resolved
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    Ok(sanitize(&base))
}

fn sanitize(base: &str) -> String {
    let mut name = String::new();
    for c in base.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_end_matches('-').to_string();
    match name.chars().next() {
        None => "app".to_string(),
        Some(c) if c.is_ascii_alphabetic() => name,
        Some(_) => format!("app-{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_found_by_name_and_by_their_old_names() {
        let table = [
            ("python-web", Some("python-web")),
            ("python-lambda", Some("python-lambda")),
            ("python", Some("python-lambda")),
            ("node", Some("node-lambda")),
            ("rust", Some("rust-lambda")),
            ("nginx-static", Some("nginx-site")),
            ("nginx-site", Some("nginx-site")),
            ("cobol", None),
        ];
        for (name, found) in table {
            assert_eq!(find(name).map(|t| t.name), found, "{name}");
        }
    }

    #[test]
    fn directory_names_become_service_names() {
        assert_eq!(sanitize("my_app"), "my-app");
        assert_eq!(sanitize("Shop.Front  end"), "shop-front-end");
        assert_eq!(sanitize("2024-site"), "app-2024-site");
        assert_eq!(sanitize("__"), "app");
        assert_eq!(sanitize("héllo"), "h-llo");
    }

    #[test]
    fn only_the_service_line_changes() {
        let manifest = b"# service: in a comment\nservice: old\nfunctions:\n  service: {}\n";
        let renamed = rename_service(manifest, "new").unwrap();
        assert_eq!(
            String::from_utf8(renamed).unwrap(),
            "# service: in a comment\nservice: new\nfunctions:\n  service: {}\n"
        );
        assert!(rename_service(b"functions: {}\n", "x").is_err());
    }
}
