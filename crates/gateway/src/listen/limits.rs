//! How many connections the listener holds at once, in all and per client
//! address. Past either cap a new connection is refused at once, so a
//! flood from one address cannot take every descriptor from the others.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The caps of one listener (the gateway's threads share one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub total: usize,
    pub per_client: usize,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    ClientFull,
}

/// Connections open now.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

impl Counts {
    /// Counts one more connection from `ip`, or says which cap it hits.
    pub(crate) fn admit(&mut self, ip: IpAddr, caps: Caps) -> Result<(), Refusal> {
        if self.total >= caps.total {
            return Err(Refusal::Full);
        }
        let mine = self.per_client.entry(ip).or_insert(0);
        if *mine >= caps.per_client {
            return Err(Refusal::ClientFull);
        }
        *mine += 1;
        self.total += 1;
        Ok(())
    }

    /// Forgets one connection from `ip` (the map keeps no empty entries,
    /// so it stays as small as the set of clients connected now).
    pub(crate) fn release(&mut self, ip: IpAddr) {
        if let Some(mine) = self.per_client.get_mut(&ip) {
            *mine -= 1;
            if *mine == 0 {
                self.per_client.remove(&ip);
            }
            self.total = self.total.saturating_sub(1);
        }
    }
}

/// The shared counts of one listener.
#[derive(Debug)]
pub struct ConnLimits {
    caps: Caps,
    counts: Mutex<Counts>,
}

/// One admitted connection; dropping it frees its place.
pub(crate) struct Permit {
    limits: Arc<ConnLimits>,
    ip: IpAddr,
}

impl ConnLimits {
    pub fn new(caps: Caps) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            caps,
            counts: Mutex::new(Counts::default()),
        })
    }

    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.admit(ip, self.caps)?;
        Ok(Permit {
            limits: Arc::clone(self),
            ip,
        })
    }

    /// Connections open now (for tests and logs).
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.limits.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.release(self.ip);
    }
}

/// The default cap on a listener's connections for a process allowed
/// `nofile` descriptors: a proxied connection holds two (client and
/// upstream), and 1024 stay for instances, logs, the store and the admin
/// API.
pub fn default_total(nofile: u64) -> usize {
    let usable = nofile.saturating_sub(1024) / 2;
    usize::try_from(usable.clamp(64, 100_000)).unwrap_or(100_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_apply_in_all_and_per_address() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let caps = Caps {
            total: 3,
            per_client: 2,
        };
        let mut counts = Counts::default();
        // (action, address, expected admission)
        let table = [
            ('+', a, Ok(())),
            ('+', a, Ok(())),
            ('+', a, Err(Refusal::ClientFull)),
            ('+', b, Ok(())),
            ('+', b, Err(Refusal::Full)),
            ('-', a, Ok(())),
            ('+', b, Ok(())),
            ('+', b, Err(Refusal::Full)),
            ('-', b, Ok(())),
            ('-', b, Ok(())),
            ('-', a, Ok(())),
            // Releasing an address that holds nothing changes nothing.
            ('-', a, Ok(())),
        ];
        for (step, (action, ip, expected)) in table.into_iter().enumerate() {
            let got = match action {
                '+' => counts.admit(ip, caps),
                _ => {
                    counts.release(ip);
                    Ok(())
                }
            };
            assert_eq!(got, expected, "step {step}");
        }
        assert_eq!(counts.total, 0);
        assert!(counts.per_client.is_empty());
    }

    #[test]
    fn the_default_cap_leaves_room_for_everything_else() {
        let table = [(0, 64), (1024, 64), (4096, 1536), (1_048_576, 100_000)];
        for (nofile, expected) in table {
            assert_eq!(default_total(nofile), expected, "nofile {nofile}");
        }
    }

    #[test]
    fn permits_free_their_place() {
        let limits = ConnLimits::new(Caps {
            total: 1,
            per_client: 1,
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let permit = limits.admit(ip).unwrap();
        assert!(limits.admit(ip).is_err());
        drop(permit);
        assert_eq!(limits.open(), 0);
        assert!(limits.admit(ip).is_ok());
    }
}
