//! Keeps instances of one function from connecting to the ports of
//! another's, with one nftables table per server.
//!
//! Every instance shares the host's network namespace (so it reaches the
//! outside world, the gateway and its own sockets as any process does), and
//! under isolation each function runs as a uid of its own. Loopback has no
//! permissions, so the kernel is told instead:
//!
//! - a new connection from a function's uid gets that uid as its conntrack
//!   mark (`client_mark` maps a uid to itself: nftables will not copy a uid
//!   into a mark directly);
//! - the listener's SYN-ACK carries the listener's uid (`meta skuid`). If
//!   the listener is one of this server's functions and the client was an
//!   instance of a different one, the SYN-ACK is dropped and the connection
//!   marked denied; the client's SYN retransmission (after about a second)
//!   is answered with a reset, so the connect fails with "connection
//!   refused". Dropping at the SYN-ACK is the first point where both ends
//!   are known.
//!
//! Connections from rouse itself, from other host users and to listeners
//! that are not instances (the gateway, the Runtime API endpoints, which
//! check their peer themselves, any host service) are untouched. The table
//! changes once per function (its uid pair), never per instance, so a cold
//! start pays nothing.

use std::collections::HashSet;
use std::ops::Range;
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};

use std::io::Write;

/// The conntrack mark of a connection whose SYN-ACK was refused.
const DENIED: u32 = 1;

/// The guard of this server, once installed.
static GUARD: OnceLock<Guard> = OnceLock::new();

struct Guard {
    table: String,
    /// Function uids whose pair is in the table.
    admitted: Mutex<HashSet<u32>>,
}

/// The nftables script that (re)creates the server's table.
///
/// `own` is this server's uid block (the listeners it protects); `any` is
/// the range every rouse server draws function uids from (the clients it
/// refuses), so instances of another server on the host are refused too.
pub fn table_script(table: &str, own: &Range<u32>, any: &Range<u32>) -> String {
    let (own_lo, own_hi) = (own.start, own.end.saturating_sub(1));
    let (any_lo, any_hi) = (any.start, any.end.saturating_sub(1));
    format!(
        "table inet {table}\n\
         delete table inet {table}\n\
         table inet {table} {{\n\
         \x20 map client_mark {{ typeof meta skuid : ct mark; }}\n\
         \x20 set same_function {{ typeof ct mark . meta skuid; }}\n\
         \x20 chain output {{\n\
         \x20   type filter hook output priority 0; policy accept;\n\
         \x20   ct state new ct mark set meta skuid map @client_mark\n\
         \x20   ct mark {DENIED} ct direction reply tcp flags & (syn | ack) == syn | ack drop\n\
         \x20   ct mark {DENIED} ct direction original tcp flags & (syn | ack) == syn reject with tcp reset\n\
         \x20   ct direction reply tcp flags & (syn | ack) == syn | ack meta skuid {own_lo}-{own_hi} ct mark {any_lo}-{any_hi} ct mark . meta skuid != @same_function ct mark set {DENIED} drop\n\
         \x20 }}\n\
         }}\n"
    )
}

/// The script that lets `uid`'s instances reach their own sockets and marks
/// their connections.
pub fn admit_script(table: &str, uid: u32) -> String {
    format!(
        "add element inet {table} client_mark {{ {uid} : {uid} }}\n\
         add element inet {table} same_function {{ {uid} . {uid} }}\n"
    )
}

/// Installs the server's table (replacing one a previous run left). On
/// failure nothing is enforced and the caller should say so.
pub fn install(key: &str, own: Range<u32>, any: Range<u32>) -> Result<(), String> {
    let table = format!("rouse_{key}");
    run_nft(&table_script(&table, &own, &any))?;
    let _ = GUARD.set(Guard {
        table,
        admitted: Mutex::new(HashSet::new()),
    });
    Ok(())
}

/// The `nft` version line, or why there is no usable `nft` (for `rouse doctor`).
pub fn available() -> Result<String, String> {
    let out = std::process::Command::new(nft_program())
        .arg("--version")
        .output()
        .map_err(|e| format!("no nft command ({e})"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Whether a guard is in force.
pub fn installed() -> bool {
    GUARD.get().is_some()
}

/// Makes sure `uid`'s pair is in the table before one of its instances
/// starts: without it the instance could not connect to its own listeners.
/// A no-op when no guard is installed or the uid is already in.
pub async fn admit(uid: u32) -> std::io::Result<()> {
    let Some(guard) = GUARD.get() else {
        return Ok(());
    };
    if guard.lock().contains(&uid) {
        return Ok(());
    }
    let script = admit_script(&guard.table, uid);
    tokio::task::spawn_blocking(move || run_nft(&script))
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)?;
    guard.lock().insert(uid);
    Ok(())
}

/// Removes the table at shutdown.
pub fn uninstall() {
    if let Some(guard) = GUARD.get() {
        let table = &guard.table;
        if let Err(err) = run_nft(&format!("delete table inet {table}\n")) {
            tracing::debug!(error = %err, "could not remove the nftables table");
        }
        guard.lock().clear();
    }
}

impl Guard {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<u32>> {
        self.admitted.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `nft` lives in sbin, which a non-root PATH often lacks.
fn nft_program() -> &'static str {
    ["/usr/sbin/nft", "/sbin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nft")
}

fn run_nft(script: &str) -> Result<(), String> {
    let mut child = std::process::Command::new(nft_program())
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft (install nftables): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_both_ranges_inclusively() {
        let script = table_script("rouse_ab", &(300_000..365_536), &(200_000..67_308_864));
        assert!(script.contains("meta skuid 300000-365535"));
        assert!(script.contains("ct mark 200000-67308863"));
        assert!(script.starts_with("table inet rouse_ab\ndelete table inet rouse_ab\n"));
    }

    #[test]
    fn admitting_pairs_the_uid_with_itself() {
        let script = admit_script("rouse_ab", 300_007);
        assert!(script.contains("client_mark { 300007 : 300007 }"));
        assert!(script.contains("same_function { 300007 . 300007 }"));
    }
}
