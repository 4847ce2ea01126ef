//! Failed admin-token attempts: per client address, a token bucket that
//! refuses everything from an address (429) once it has failed too often,
//! and a second bucket that keeps the log of failures short under a flood.
//! Pure: time is a parameter (seconds since any fixed start).

use std::collections::HashMap;
use std::net::IpAddr;

/// Failures an address may make in a burst.
pub(crate) const BURST: f64 = 10.0;
/// Failures per second it earns back (10 a minute).
pub(crate) const REFILL_PER_SEC: f64 = 10.0 / 60.0;
/// Log lines about failures per minute, over all addresses.
const LOG_BURST: f64 = 10.0;
const LOG_REFILL_PER_SEC: f64 = 10.0 / 60.0;
/// Addresses tracked at once; past it, the one whose last failure is oldest
/// is forgotten first.
const MAX_CLIENTS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    tokens: f64,
    at: f64,
}

impl Bucket {
    fn full(burst: f64, now: f64) -> Bucket {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    fn refilled(self, burst: f64, rate: f64, now: f64) -> Bucket {
        let elapsed = (now - self.at).max(0.0);
        Bucket {
            tokens: (self.tokens + elapsed * rate).min(burst),
            at: now.max(self.at),
        }
    }
}

/// An IPv4 address, or an IPv6 /64 (one host usually has a whole /64, so
/// single IPv6 addresses would be free to rotate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4(u32),
    V6Net(u64),
}

impl From<IpAddr> for Client {
    fn from(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(v4) => Client::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(u32::from(v4)),
                None => Client::V6Net((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// What to do about one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Log {
    /// Log it, saying how many failures before it went unlogged.
    Line {
        unlogged_before: u64,
    },
    Skip,
}

#[derive(Debug, Default)]
pub(crate) struct FailedAttempts {
    clients: HashMap<Client, Bucket>,
    log: Option<Bucket>,
    unlogged: u64,
}

impl FailedAttempts {
    /// `Some(seconds)` to wait when `ip` has no failures left to spend: its
    /// requests are refused before their token is even compared, so guessing
    /// on gets no answer either way.
    pub(crate) fn locked_out(&self, ip: IpAddr, now: f64) -> Option<u64> {
        let bucket = self
            .clients
            .get(&Client::from(ip))?
            .refilled(BURST, REFILL_PER_SEC, now);
        // The epsilon keeps float noise (5.000000001 s) from adding a second.
        (bucket.tokens < 1.0).then(|| {
            ((1.0 - bucket.tokens) / REFILL_PER_SEC - 1e-9)
                .ceil()
                .max(1.0) as u64
        })
    }

    /// Records a failed attempt by `ip`.
    pub(crate) fn failed(&mut self, ip: IpAddr, now: f64) -> Log {
        let client = Client::from(ip);
        if !self.clients.contains_key(&client) && self.clients.len() >= MAX_CLIENTS {
            self.forget_one(now);
        }
        let bucket = self
            .clients
            .get(&client)
            .copied()
            .unwrap_or_else(|| Bucket::full(BURST, now))
            .refilled(BURST, REFILL_PER_SEC, now);
        self.clients.insert(
            client,
            Bucket {
                tokens: (bucket.tokens - 1.0).max(0.0),
                at: bucket.at,
            },
        );
        let log = self
            .log
            .unwrap_or_else(|| Bucket::full(LOG_BURST, now))
            .refilled(LOG_BURST, LOG_REFILL_PER_SEC, now);
        if log.tokens >= 1.0 {
            self.log = Some(Bucket {
                tokens: log.tokens - 1.0,
                at: log.at,
            });
            let unlogged_before = std::mem::take(&mut self.unlogged);
            Log::Line { unlogged_before }
        } else {
            self.log = Some(log);
            self.unlogged += 1;
            Log::Skip
        }
    }

    /// Drops an address that has earned everything back, else the one
    /// that failed longest ago.
    fn forget_one(&mut self, now: f64) {
        let victim = self
            .clients
            .iter()
            .find(|(_, b)| b.refilled(BURST, REFILL_PER_SEC, now).tokens >= BURST)
            .or_else(|| self.clients.iter().min_by(|a, b| a.1.at.total_cmp(&b.1.at)))
            .map(|(c, _)| *c);
        if let Some(victim) = victim {
            self.clients.remove(&victim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ten_failures_a_minute_then_429_until_one_is_earned_back() {
        let mut f = FailedAttempts::default();
        let a = ip("10.0.0.1");
        for _ in 0..10 {
            assert_eq!(f.locked_out(a, 0.0), None);
            f.failed(a, 0.0);
        }
        // (now, Retry-After)
        let cases = [
            (0.0, Some(6)),
            (1.0, Some(5)),
            (3.0, Some(3)),
            (5.5, Some(1)),
            (6.5, None),
        ];
        for (now, want) in cases {
            assert_eq!(f.locked_out(a, now), want, "at {now}");
        }
        assert_eq!(f.locked_out(ip("10.0.0.2"), 0.0), None, "another address");
        f.failed(a, 6.5);
        assert_eq!(f.locked_out(a, 6.5), Some(6));
        assert_eq!(f.locked_out(a, 70.0), None);
    }

    #[test]
    fn slow_failures_never_lock_out() {
        let mut f = FailedAttempts::default();
        let a = ip("10.0.0.1");
        for i in 0..100 {
            let now = f64::from(i) * 6.0;
            assert_eq!(f.locked_out(a, now), None, "at {now}");
            f.failed(a, now);
        }
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let mut f = FailedAttempts::default();
        for i in 0..10 {
            f.failed(ip(&format!("2001:db8:1:2::{i:x}")), 0.0);
        }
        assert!(f.locked_out(ip("2001:db8:1:2::ffff"), 0.0).is_some());
        assert!(f.locked_out(ip("2001:db8:1:3::1"), 0.0).is_none());
        f.failed(ip("::ffff:10.0.0.9"), 0.0);
        assert_eq!(
            Client::from(ip("::ffff:10.0.0.9")),
            Client::from(ip("10.0.0.9"))
        );
    }

    #[test]
    fn the_log_says_how_many_it_skipped() {
        let mut f = FailedAttempts::default();
        let logs: Vec<Log> = (0..13)
            .map(|i| f.failed(ip(&format!("10.0.1.{i}")), 0.0))
            .collect();
        assert!(logs[..10]
            .iter()
            .all(|l| *l == Log::Line { unlogged_before: 0 }));
        assert!(logs[10..].iter().all(|l| *l == Log::Skip));
        assert_eq!(
            f.failed(ip("10.0.2.1"), 6.0),
            Log::Line { unlogged_before: 3 }
        );
    }

    #[test]
    fn the_table_of_addresses_stays_bounded() {
        let mut f = FailedAttempts::default();
        for i in 0..(MAX_CLIENTS as u32 + 5) {
            f.failed(
                IpAddr::from(std::net::Ipv4Addr::from(i)),
                f64::from(i) * 1e-6,
            );
        }
        assert_eq!(f.clients.len(), MAX_CLIENTS);
    }
}
