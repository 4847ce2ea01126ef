//! Host set-up for isolating one server's instances: the server-wide cgroup
//! tree, the data dir's permissions, a uid block per server and a uid per
//! function, favordynmods on cgroup v1, and the [`Isolate`] one instance gets.
//! The pool holds one [`Confinement`] and asks it for each instance.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cgroup::{self, CgroupTree, Limits};
use crate::isolation::Level;
use crate::Isolate;

/// Function uids (and gids) start here: far above the uids distributions
/// hand out to people and daemons.
pub const UID_BASE: u32 = 200_000;
/// Each server (data dir) gets its own block of uids, so functions of two
/// servers on one host never share a uid; a function's uid is its block's
/// start plus its number in the store.
const UIDS_PER_SERVER: u32 = 65_536;
const SERVER_BLOCKS: u32 = 1024;

/// Isolation in force for every instance of this server.
pub struct Confinement {
    pub level: Level,
    /// The first uid of this server's block.
    uid_base: u32,
    /// Present when `level` is above `None`.
    tree: Option<Arc<CgroupTree>>,
}

impl Confinement {
    pub fn none() -> Confinement {
        Confinement {
            level: Level::None,
            uid_base: UID_BASE,
            tree: None,
        }
    }

    /// Sets up `level` for the server using `data_dir`: kills and removes the
    /// cgroups a previous run left, and makes the data dir reachable by
    /// function uids while keeping rouse's own files private.
    pub fn prepare(level: Level, data_dir: &Path) -> std::io::Result<Confinement> {
        if level == Level::None {
            return Ok(Confinement::none());
        }
        let kind = cgroup::detect().map_err(std::io::Error::other)?;
        favor_dynamic_changes(&kind, data_dir);
        let tree = CgroupTree::open(kind, &cgroup::tree_key(data_dir))?;
        let cleaned = tree.clean_leftovers();
        if cleaned > 0 {
            tracing::warn!(
                cleaned,
                "removed instance cgroups a previous run left behind"
            );
        }
        protect_data_dir(data_dir)?;
        guard_ports(data_dir);
        Ok(Confinement {
            level,
            uid_base: uid_base(data_dir),
            tree: Some(Arc::new(tree)),
        })
    }

    /// Removes the server's (empty) cgroup tree once every instance stopped.
    pub fn remove_tree(&self) {
        if let Some(tree) = &self.tree {
            tree.remove();
            crate::netguard::uninstall();
        }
    }

    /// How to confine one instance; `None` when isolation is off.
    pub fn instance(
        &self,
        uid: u32,
        cgroup_name: String,
        memory_mb: u32,
        runtime_dir: &Path,
        no_network: bool,
    ) -> Option<Isolate> {
        let tree = self.tree.as_ref()?;
        Some(Isolate {
            level: self.level,
            uid,
            cgroups: tree.clone(),
            cgroup_name,
            limits: Limits {
                memory_mb,
                pids: cgroup::PIDS_MAX,
            },
            visible: vec![runtime_dir.to_path_buf()],
            no_network,
        })
    }
}

/// Function uids may traverse the data dir (to reach `instances/<id>/` and
/// `runtime/`) but not list it or read anything else: the store, the admin
/// token, logs and artifacts are rouse's alone.
fn protect_data_dir(data_dir: &Path) -> std::io::Result<()> {
    set_mode(data_dir, 0o711)?;
    for entry in fs::read_dir(data_dir)? {
        let entry = entry?;
        let path: PathBuf = entry.path();
        let mode = match entry.file_name().to_str() {
            Some("runtime") => 0o755,
            Some("instances") => 0o711,
            _ if entry.file_type()?.is_dir() => 0o700,
            _ => 0o600,
        };
        set_mode(&path, mode)?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

impl Confinement {
    /// The uid (and gid) instances of the function numbered `number` run as.
    pub fn function_uid(&self, number: i64) -> u32 {
        // Numbers past the block (65,535 functions on one server) wrap.
        let offset = u32::try_from(number.rem_euclid(i64::from(UIDS_PER_SERVER))).unwrap_or(0);
        self.uid_base + offset
    }
}

/// The start of the uid block for the server using `data_dir`.
fn uid_base(data_dir: &Path) -> u32 {
    let key = cgroup::tree_key(data_dir);
    let hash = u64::from_str_radix(&key, 16).unwrap_or(0);
    let block = u32::try_from(hash % u64::from(SERVER_BLOCKS)).unwrap_or(0);
    UID_BASE + block * UIDS_PER_SERVER
}

/// Keeps each function's instances off other functions' ports (see
/// [`crate::netguard`]). Without nftables rouse still runs, and says
/// what instances can then reach.
fn guard_ports(data_dir: &Path) {
    // For hosts whose own firewall owns the conntrack mark.
    if std::env::var("ROUSE_NETGUARD").is_ok_and(|v| v == "0") {
        tracing::warn!(
            "ROUSE_NETGUARD=0: instances CAN connect to other functions' instance ports"
        );
        return;
    }
    let base = uid_base(data_dir);
    let own = base..base + UIDS_PER_SERVER;
    let any = UID_BASE..UID_BASE + SERVER_BLOCKS * UIDS_PER_SERVER;
    match crate::netguard::install(&cgroup::tree_key(data_dir), own, any) {
        Ok(()) => tracing::info!("instances of one function cannot connect to another function's ports (nftables table rouse_{})", cgroup::tree_key(data_dir)),
        Err(err) => tracing::warn!(
            error = %err,
            "instances CAN connect to other functions' instance ports: install nftables so rouse can prevent it"
        ),
    }
}

/// Switches the host's cgroup v1 hierarchies to fast migrations, unless
/// `ROUSE_CGROUP_FAVORDYNMODS=0`; see [`cgroup::favor_dynamic_changes`].
fn favor_dynamic_changes(kind: &cgroup::CgroupKind, data_dir: &Path) {
    if std::env::var("ROUSE_CGROUP_FAVORDYNMODS").is_ok_and(|v| v == "0") {
        return;
    }
    match cgroup::favor_dynamic_changes(kind, &data_dir.join(".cgroup-favordynmods")) {
        Ok(true) => tracing::info!(
            "cgroup v1: favordynmods on, so joining an instance's cgroup does not wait for an RCU grace period (ROUSE_CGROUP_FAVORDYNMODS=0 leaves the host as it is)"
        ),
        Ok(false) => {}
        // An old kernel without the option: cold starts are slower, nothing else.
        Err(err) => tracing::debug!(error = %err, "cgroup favordynmods not available"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_distinct_per_function_and_per_server() {
        let a = Confinement {
            uid_base: uid_base(Path::new("/srv/a")),
            ..Confinement::none()
        };
        let b = Confinement {
            uid_base: uid_base(Path::new("/srv/b")),
            ..Confinement::none()
        };
        assert_ne!(a.function_uid(1), a.function_uid(2));
        assert_ne!(a.function_uid(1), b.function_uid(1));
        for uid in [a.function_uid(1), b.function_uid(65_535)] {
            assert!((UID_BASE..UID_BASE + SERVER_BLOCKS * UIDS_PER_SERVER).contains(&uid));
        }
    }
}
