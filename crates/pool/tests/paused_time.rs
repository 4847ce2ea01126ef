//! Idle reaping, `maxLifetime` and `queueTimeout` on tokio's paused clock:
//! minutes of a function's life pass in milliseconds. The instances are
//! real processes (`sleep`, socket activated, so each is ready the moment
//! it is spawned); only the timers are virtual. Waiting for a process to
//! exit polls without sleeping on the clock, so virtual time stands still
//! meanwhile.

use std::sync::Arc;
use std::time::Duration;

use rouse_logs::LogBook;
use rouse_manifest::{Flavor, LoadOptions};
use rouse_pool::{AcquireError, Limit, NodeLimits, Pool};
use rouse_sandbox::isolation::Level;
use rouse_store::{archive, Store};
use tokio::time::{sleep, Instant};

const FUNCTION: &str = "clock-dev-app";

struct Fixture {
    pool: Pool,
    logs: Arc<LogBook>,
    _tmp: tempfile::TempDir,
}

/// A pool with one deployed web function whose `concurrency:` / `scaling:`
/// lines are `settings` (indented as keys of the function).
async fn deployed(settings: &str) -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).expect("project dir");
    std::fs::write(project.join("README"), "an app that only sleeps\n").expect("file");
    let manifest = format!(
        "service: clock\nfunctions:\n  app:\n    web:\n      command: [\"sleep\", \"1000\"]\n      socketActivation: true\n{settings}"
    );
    let loaded = rouse_manifest::parse_str(
        &manifest,
        "rouse.yaml",
        Flavor::Rouse,
        &LoadOptions::default(),
    )
    .expect("manifest");
    let store = Arc::new(Store::open(&data).expect("store"));
    let bytes = archive::pack_dir(&project, &[], &mut |_| {}).expect("pack");
    let artifact = store
        .put_artifact(std::io::Cursor::new(bytes))
        .await
        .expect("artifact");
    store.deploy(&loaded.spec, &artifact).await.expect("deploy");
    let logs = Arc::new(LogBook::open(&data.join("logs")).expect("logs"));
    let pool = Pool::configured(
        store,
        logs.clone(),
        Level::None,
        NodeLimits::for_this_machine(),
    )
    .expect("pool");
    Fixture {
        pool,
        logs,
        _tmp: tmp,
    }
}

impl Fixture {
    fn log(&self) -> String {
        self.logs.last_lines(FUNCTION, 200).expect("log").join("\n")
    }

    fn instance_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .pool
            .instances(FUNCTION)
            .into_iter()
            .map(|i| i.id)
            .collect();
        ids.sort();
        ids
    }

    /// Waits, in real time and without moving the paused clock, until
    /// `live` instance processes are left.
    async fn until_live(&self, live: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.pool.live_instances() != live {
            assert!(
                std::time::Instant::now() < deadline,
                "{} instances live, want {live}",
                self.pool.live_instances()
            );
            std::thread::sleep(Duration::from_millis(1));
            tokio::task::yield_now().await;
        }
    }
}

/// Whether `pid` is a running process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

#[tokio::test(start_paused = true)]
async fn an_idle_instance_stops_after_its_idle_timeout_and_the_next_request_starts_another() {
    let f = deployed("    scaling: { idleTimeout: 60 }\n").await;
    let lease = f.pool.acquire(FUNCTION).await.expect("lease");
    assert!(lease.cold_start());
    let (first, pid) = (lease.instance_id().to_string(), lease.pid());
    drop(lease);

    sleep(Duration::from_secs(59)).await;
    assert_eq!(
        f.instance_ids(),
        std::slice::from_ref(&first),
        "not idle for long enough yet"
    );
    assert!(alive(pid));

    sleep(Duration::from_secs(2)).await;
    f.until_live(0).await;
    assert!(!alive(pid), "instance still running after its idle timeout");
    assert!(f.instance_ids().is_empty(), "rouse ls shows no instances");
    assert!(f.log().contains("stopped: idle for 60s"), "{}", f.log());

    let again = f.pool.acquire(FUNCTION).await.expect("lease");
    assert!(again.cold_start());
    assert_ne!(again.instance_id(), first);
}

#[tokio::test(start_paused = true)]
async fn a_request_in_flight_keeps_its_instance_from_idling() {
    let f = deployed("    scaling: { idleTimeout: 60 }\n").await;
    let lease = f.pool.acquire(FUNCTION).await.expect("lease");
    let first = lease.instance_id().to_string();
    sleep(Duration::from_secs(600)).await;
    assert_eq!(f.instance_ids(), std::slice::from_ref(&first));
    drop(lease);
    // The idle clock starts when the request ends.
    sleep(Duration::from_secs(59)).await;
    assert_eq!(f.instance_ids(), [first]);
    sleep(Duration::from_secs(2)).await;
    f.until_live(0).await;
}

#[tokio::test(start_paused = true)]
async fn min_instances_stay_warm_through_many_idle_timeouts() {
    let f = deployed("    scaling: { minInstances: 2, idleTimeout: 10 }\n").await;
    assert_eq!(f.pool.warm(FUNCTION).await.expect("warm"), 2);
    let warm = f.instance_ids();
    assert_eq!(warm.len(), 2);
    sleep(Duration::from_secs(100)).await;
    assert_eq!(f.instance_ids(), warm, "the same two instances");
    assert_eq!(f.pool.live_instances(), 2);
}

#[tokio::test(start_paused = true)]
async fn max_lifetime_recycles_after_draining_in_flight_requests() {
    let f = deployed("    scaling: { maxLifetime: 100, idleTimeout: 1000 }\n").await;
    let held = f.pool.acquire(FUNCTION).await.expect("lease");
    let (first, pid) = (held.instance_id().to_string(), held.pid());

    sleep(Duration::from_secs(101)).await;
    let instances = f.pool.instances(FUNCTION);
    assert_eq!(instances.len(), 1);
    assert_eq!(
        instances[0].state, "draining",
        "past maxLifetime it takes no new requests"
    );
    assert!(
        f.log().contains("reached maxLifetime; draining"),
        "{}",
        f.log()
    );
    assert!(
        alive(pid),
        "the request in flight finishes on the old instance"
    );

    let next = f.pool.acquire(FUNCTION).await.expect("lease");
    assert_ne!(
        next.instance_id(),
        first,
        "a fresh instance after maxLifetime"
    );
    drop(held);
    f.until_live(1).await;
    assert!(!alive(pid));
    assert!(
        f.log()
            .contains(&format!("instance {first} stopped: drained")),
        "{}",
        f.log()
    );
}

#[tokio::test(start_paused = true)]
async fn past_max_instances_a_request_queues_for_its_queue_timeout_then_is_throttled() {
    let f =
        deployed("    concurrency: 1\n    scaling: { maxInstances: 1, queueTimeout: 30 }\n").await;
    let held = f.pool.acquire(FUNCTION).await.expect("lease");

    let asked = Instant::now();
    match f.pool.acquire(FUNCTION).await {
        Err(AcquireError::Throttled {
            limit, retry_after, ..
        }) => {
            assert_eq!(limit, Limit::MaxInstances);
            assert_eq!(retry_after, Duration::from_secs(1));
        }
        Err(other) => panic!("want Throttled, got {other}"),
        Ok(_) => panic!("want Throttled, got a lease"),
    }
    assert_eq!(
        asked.elapsed(),
        Duration::from_secs(30),
        "throttled after queueTimeout"
    );
    let throttles = f.pool.metrics()[0].throttles;
    assert!(
        throttles.contains(&(Limit::MaxInstances, 1)),
        "{throttles:?}"
    );

    // A request that queues gets the slot the moment it frees up.
    let pool = f.pool.clone();
    let queued = tokio::spawn(async move {
        let asked = Instant::now();
        let lease = pool
            .acquire(FUNCTION)
            .await
            .map(|l| l.instance_id().to_string());
        (lease, asked.elapsed())
    });
    sleep(Duration::from_secs(10)).await;
    let instance = held.instance_id().to_string();
    drop(held);
    let (lease, waited) = queued.await.expect("task");
    assert_eq!(
        lease.expect("served"),
        instance,
        "on the same warm instance"
    );
    assert_eq!(waited, Duration::from_secs(10));
}
