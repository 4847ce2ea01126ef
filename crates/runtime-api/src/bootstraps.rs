//! The stdlib-only runtimes rouse ships for `python3.*`, `nodejs*` and
//! `ruby*` functions. They speak the Runtime API like any custom runtime, so the
//! server side has no special cases for them.

use std::io::Write;
use std::path::Path;

/// Python runtime: `python3 bootstrap.py` (3.8+, stdlib only).
pub const PYTHON_BOOTSTRAP: &str = include_str!("bootstraps/bootstrap.py");
/// Node runtime: `node bootstrap.js` (18+, no dependencies).
pub const NODE_BOOTSTRAP: &str = include_str!("bootstraps/bootstrap.js");
/// Ruby runtime: `ruby bootstrap.rb` (3.0+, stdlib only).
pub const RUBY_BOOTSTRAP: &str = include_str!("bootstraps/bootstrap.rb");

/// File name [`write_bootstraps`] gives [`PYTHON_BOOTSTRAP`].
pub const PYTHON_BOOTSTRAP_FILE: &str = "bootstrap.py";
/// File name [`write_bootstraps`] gives [`NODE_BOOTSTRAP`].
pub const NODE_BOOTSTRAP_FILE: &str = "bootstrap.js";
/// File name [`write_bootstraps`] gives [`RUBY_BOOTSTRAP`].
pub const RUBY_BOOTSTRAP_FILE: &str = "bootstrap.rb";

/// Writes `bootstrap.py`, `bootstrap.js` and `bootstrap.rb` into `runtime_dir` (created if
/// missing) with mode 0755.
///
/// Each file is written under a temporary name and renamed into place, so a
/// runtime starting at the same moment never reads a half-written script.
pub fn write_bootstraps(runtime_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(runtime_dir)?;
    write_executable(&runtime_dir.join(PYTHON_BOOTSTRAP_FILE), PYTHON_BOOTSTRAP)?;
    write_executable(&runtime_dir.join(NODE_BOOTSTRAP_FILE), NODE_BOOTSTRAP)?;
    write_executable(&runtime_dir.join(RUBY_BOOTSTRAP_FILE), RUBY_BOOTSTRAP)
}

fn write_executable(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = Path::new(&tmp_name);
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o755);
        }
        let mut file = options.open(tmp)?;
        file.write_all(contents.as_bytes())?;
        // The mode given to open() is filtered by the umask; set it outright.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::rename(tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_executable_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let runtime_dir = dir.path().join("runtime");
        write_bootstraps(&runtime_dir).unwrap();
        // Twice: rewriting over existing files works too.
        write_bootstraps(&runtime_dir).unwrap();
        for (name, contents) in [
            (PYTHON_BOOTSTRAP_FILE, PYTHON_BOOTSTRAP),
            (NODE_BOOTSTRAP_FILE, NODE_BOOTSTRAP),
            (RUBY_BOOTSTRAP_FILE, RUBY_BOOTSTRAP),
        ] {
            let path = runtime_dir.join(name);
            assert_eq!(std::fs::read_to_string(&path).unwrap(), contents);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o755, "{name}");
            }
        }
        let leftovers = std::fs::read_dir(&runtime_dir).unwrap().count();
        assert_eq!(leftovers, 3);
    }
}
