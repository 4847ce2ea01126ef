//! What several nodes share through a PostgreSQL store: each test opens
//! the same database from several `Store`s with their own data dirs, as
//! the nodes of a cluster do. Skipped (saying so) without PostgreSQL.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use rouse_manifest::{DeploySpec, FunctionKind, FunctionSpec, LambdaSpec, Scaling, StageRouting};
use rouse_store::{archive, node_state, NodeInfo, NodeState, Store, NODE_TTL};

struct Cluster {
    db: rouse_testpg::Database,
    dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    fn new() -> Option<Cluster> {
        Some(Cluster {
            db: rouse_testpg::database()?,
            dirs: Vec::new(),
        })
    }

    /// Another node: a store on the same database with a data dir of its own.
    async fn node(&mut self) -> Store {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_postgres(dir.path(), &self.db.url)
            .await
            .unwrap();
        self.dirs.push(dir);
        store
    }
}

fn spec() -> DeploySpec {
    DeploySpec {
        service: "svc".into(),
        stage: "dev".into(),
        functions: vec![FunctionSpec {
            name: "svc-dev-f".into(),
            short_name: "f".into(),
            kind: FunctionKind::Lambda(LambdaSpec {
                runtime: "python3.12".into(),
                handler: "app.handler".into(),
            }),
            environment: Default::default(),
            memory_size: 128,
            timeout_secs: 3.0,
            concurrency: 1,
            scaling: Scaling::default(),
            events: vec![],
            stage_routing: StageRouting::None,
            async_invoke: Default::default(),
        }],
    }
}

/// A project with a file of `size` incompressible bytes.
fn packed(size: usize) -> (Vec<u8>, Vec<u8>) {
    let project = tempfile::tempdir().unwrap();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let content: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(project.path().join("blob.bin"), &content).unwrap();
    let bytes = archive::pack_dir(project.path(), &[], &mut |_| {}).unwrap();
    (bytes, content)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_uploaded_on_one_node_is_fetched_in_chunks_by_another() {
    let Some(mut cluster) = Cluster::new() else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    // Over 3 MiB: several 1 MiB rows.
    let (bytes, content) = packed(3 * 1024 * 1024 + 123);
    let sha = a.put_artifact(Cursor::new(bytes)).await.unwrap();
    let rows = cluster
        .db
        .psql(&format!(
            "SELECT chunks FROM artifacts WHERE sha256 = '{sha}'"
        ))
        .unwrap();
    assert!(rows.trim().parse::<i32>().unwrap() >= 4, "{rows}");

    assert!(b.has_artifact(&sha).await.unwrap());
    assert!(!b
        .data_dir()
        .join("artifacts")
        .join(format!("{sha}.tar.gz"))
        .exists());
    let code = b.code_dir(&sha).await.unwrap();
    assert_eq!(std::fs::read(code.join("blob.bin")).unwrap(), content);
    // B keeps its own copy from now on.
    assert!(b
        .data_dir()
        .join("artifacts")
        .join(format!("{sha}.tar.gz"))
        .is_file());
    // And B can deploy it.
    b.deploy(&spec(), &sha).await.unwrap();
    assert_eq!(a.list_functions().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_chunk_is_refused_not_extracted() {
    let Some(mut cluster) = Cluster::new() else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (bytes, _) = packed(10_000);
    let sha = a.put_artifact(Cursor::new(bytes)).await.unwrap();
    cluster
        .db
        .psql("UPDATE artifact_chunks SET data = 'garbage'::bytea")
        .unwrap();
    let err = b.code_dir(&sha).await.unwrap_err().to_string();
    assert!(err.contains("do not hash"), "{err}");
    assert!(!b.data_dir().join("code").join(&sha).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_bump_the_generation_and_notify_other_nodes() {
    let Some(mut cluster) = Cluster::new() else {
        return;
    };
    let a = Arc::new(cluster.node().await);
    let b = Arc::new(cluster.node().await);
    let hint = Arc::new(tokio::sync::Notify::new());
    let listener = {
        let (b, hint) = (b.clone(), hint.clone());
        tokio::spawn(async move { b.listen(hint).await })
    };
    // The first wake-up says LISTEN is in place.
    tokio::time::timeout(Duration::from_secs(10), hint.notified())
        .await
        .unwrap();

    let g0 = b.generation().await.unwrap();
    let (bytes, _) = packed(100);
    let sha = a.put_artifact(Cursor::new(bytes)).await.unwrap();
    a.deploy(&spec(), &sha).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), hint.notified())
        .await
        .expect("B heard of A's deploy");
    let g1 = b.generation().await.unwrap();
    assert!(g1 > g0);

    a.set_alias("svc-dev-f", "live", 1, None).await.unwrap();
    a.remove_function("svc-dev-f").await.unwrap();
    assert!(b.generation().await.unwrap() >= g1 + 2);
    listener.abort();
}

fn node(name: &str) -> NodeInfo {
    NodeInfo {
        id: uuid_like(name),
        name: name.into(),
        gateway: "127.0.0.1:8080".into(),
        admin: "127.0.0.1:9090".into(),
        internal: "127.0.0.1:7070".into(),
        version: "0.1.0".into(),
        started_at: 1,
    }
}

fn uuid_like(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_heartbeat_and_leave() {
    let Some(mut cluster) = Cluster::new() else {
        return;
    };
    let a = cluster.node().await;
    let (one, two) = (node("one"), node("two"));
    a.register_node(&one).await.unwrap();
    a.register_node(&two).await.unwrap();
    assert!(a.heartbeat(&one).await.unwrap());
    let nodes = a.nodes().await.unwrap();
    let names: Vec<_> = nodes.iter().map(|n| n.info.name.as_str()).collect();
    assert_eq!(names, ["one", "two"]);
    assert!(nodes
        .iter()
        .all(|n| node_state(n.heartbeat_age, NODE_TTL) == NodeState::Alive));

    a.deregister_node(&two).await.unwrap();
    let nodes = a.nodes().await.unwrap();
    assert_eq!(
        node_state(nodes[1].heartbeat_age, NODE_TTL),
        NodeState::Dead
    );

    // The same name started again takes the row over; the old start's
    // heartbeats no longer count.
    let mut again = node("one");
    again.id = "one-restarted".into();
    a.register_node(&again).await.unwrap();
    assert!(!a.heartbeat(&one).await.unwrap());
    assert!(a.heartbeat(&again).await.unwrap());
    assert_eq!(a.nodes().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_is_claimed_by_exactly_one_of_many_nodes() {
    let Some(mut cluster) = Cluster::new() else {
        return;
    };
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Arc::new(cluster.node().await));
    }
    for tick in [60_000i64, 120_000, 180_000] {
        let claims = futures_util::future::join_all(nodes.iter().enumerate().map(|(i, n)| {
            let n = n.clone();
            async move { n.claim_tick("f/0", tick, &format!("n{i}")).await.unwrap() }
        }))
        .await;
        assert_eq!(claims.iter().filter(|won| **won).count(), 1, "{claims:?}");
    }
    // Another schedule's tick at the same time is its own.
    assert!(nodes[0].claim_tick("g/0", 60_000, "n0").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_when_nodes_start_together() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let url = cluster.db.url.clone();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let opened =
        futures_util::future::join_all(dirs.iter().map(|d| Store::open_postgres(d.path(), &url)))
            .await;
    assert!(opened.iter().all(Result::is_ok));
    let versions = cluster
        .db
        .psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version")
        .unwrap();
    assert_eq!(versions.trim(), "1,2,3,4,5,6");
    // A database from a newer rouse is refused, not half-used.
    cluster
        .db
        .psql("INSERT INTO schema_version VALUES (99)")
        .unwrap();
    let err = Store::open_postgres(dirs[0].path(), &url)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("newer"), "{err}");
}
