//! Inputs meant to escape: names that are paths, archives that explode.
//! The server is called directly, as a client that skips the CLI's
//! checks would.

mod common;

use common::*;

fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut raw = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut raw, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (name, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, *content)
                .expect("append");
        }
        tar.into_inner().expect("tar").finish().expect("gzip");
    }
    raw
}

async fn admin_post(server: &Server, path: &str, body: Vec<u8>) -> Response {
    let auth = format!("Bearer {TOKEN}");
    request(
        &client(),
        "POST",
        &format!("{}{path}", server.admin),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn names_that_are_paths_are_refused_and_nothing_is_written() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let target = tmp.path().join("x");
    std::fs::create_dir_all(&target).expect("mkdir");
    let uploaded = admin_post(
        &server,
        "/v1/artifacts",
        tar_gz(&[("app.py", fixture_app().as_bytes())]),
    )
    .await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.text());
    let artifact = uploaded.json()["sha256"].as_str().expect("sha").to_string();
    let loaded = rouse_manifest::parse_str(
        "service: names\nfunctions:\n  app:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n    events:\n      - http: { path: \"/{proxy+}\", method: any }\n",
        "rouse.yaml",
        rouse_manifest::Flavor::Rouse,
        &Default::default(),
    )
    .expect("manifest");
    let spec = serde_json::to_value(&loaded.spec).expect("spec json");

    // Deep enough to reach / from the logs directory, then into `x`.
    let climb = format!("../../../../../../../../..{}/pwned", target.display());
    let bad = [climb.as_str(), "a/b", "a b", "a\nb", "..", "x\0y", ""];
    // (where in the spec, JSON pointer)
    let fields = [
        "/functions/0/name",
        "/functions/0/shortName",
        "/service",
        "/stage",
    ];
    for field in fields {
        for name in bad {
            let mut spec = spec.clone();
            *spec.pointer_mut(field).expect("field") = name.into();
            let body = serde_json::json!({ "artifact": artifact, "spec": spec });
            let resp = admin_post(&server, "/v1/deployments", body.to_string().into_bytes()).await;
            assert_eq!(resp.status, 400, "{field} = {name:?}: {}", resp.text());
            assert_eq!(
                resp.json()["error"]["code"],
                "InvalidName",
                "{field} = {name:?}"
            );
        }
    }
    assert!(
        files_under(&target).is_empty(),
        "{:?}",
        files_under(&target)
    );
    assert!(files_under(&server.data_dir.join("logs")).is_empty());
    let ls = String::from_utf8_lossy(&server.cli(&["ls"]).stdout).to_string();
    assert!(ls.contains("No functions deployed"), "{ls}");

    // The same spec with its own names deploys: the refusals were the names.
    let body = serde_json::json!({ "artifact": artifact, "spec": spec });
    let resp = admin_post(&server, "/v1/deployments", body.to_string().into_bytes()).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

/// Entries of a data-dir subdirectory, hidden ones (temp files) included.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect()
}

/// `size` bytes that gzip cannot shrink (xorshift).
fn incompressible(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A tar.gz of one file of `mb` MB of zeros, made by tar and gzip (fast
/// even in a debug build): a few hundred KB that unpack to `mb` MB.
fn zero_bomb(dir: &std::path::Path, mb: u64) -> Vec<u8> {
    let file = dir.join("zeros.bin");
    std::fs::File::create(&file)
        .and_then(|f| f.set_len(mb * 1000 * 1000))
        .expect("sparse file");
    let out = std::process::Command::new("tar")
        .args(["-czf", "-", "-C"])
        .arg(dir)
        .arg("zeros.bin")
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&file).expect("rm");
    out.stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decompression_bomb_and_an_over_limit_artifact_are_refused_leaving_nothing() {
    let tmp = open_tempdir();
    // Lambda's default: 250 MB unpacked.
    let server = Server::start(&tmp.path().join("data"));
    let bomb = zero_bomb(tmp.path(), 300);
    assert!(
        bomb.len() < 2_000_000,
        "the bomb is small: {} bytes",
        bomb.len()
    );
    let resp = admin_post(&server, "/v1/artifacts", bomb).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(resp.json()["error"]["code"], "BadArchive");
    assert!(resp.text().contains("too large"), "{}", resp.text());
    assert_eq!(
        names_in(&server.data_dir.join("artifacts")),
        Vec::<String>::new()
    );
    assert_eq!(
        names_in(&server.data_dir.join("code")),
        Vec::<String>::new()
    );
    drop(server);

    let small = Server::start_with(&tmp.path().join("data2"), &["--max-unpacked-mb", "5"]);
    let data = incompressible(6_000_000);
    let archive = tar_gz(&[("blob.bin", &data)]);
    let resp = admin_post(&small, "/v1/artifacts", archive).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(
        resp.text().contains("5000000 bytes unpacked"),
        "{}",
        resp.text()
    );
    assert_eq!(
        names_in(&small.data_dir.join("artifacts")),
        Vec::<String>::new()
    );
    // Under the limit, the same server takes it.
    let fits = tar_gz(&[("blob.bin", &data[..4_000_000])]);
    let resp = admin_post(&small, "/v1/artifacts", fits).await;
    assert_eq!(resp.status, 201, "{}", resp.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn rm_frees_the_code_no_version_needs_and_keeps_what_rollbacks_need() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let manifest = |service: &str| {
        format!("service: {service}\nfunctions:\n  app:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n    events:\n      - http: {{ path: \"/{service}/{{proxy+}}\", method: any }}\n")
    };
    let keep = project(
        tmp.path(),
        "keep",
        &manifest("keep"),
        &[("app.py", &fixture_app())],
    );
    server.deploy(&keep);
    let code = server.data_dir.join("code");
    let first = names_in(&code);
    assert_eq!(first.len(), 1, "{first:?}");
    // A second version with other code: both stay, the first for rollbacks.
    std::fs::write(keep.join("extra.txt"), "v2").expect("write");
    server.deploy(&keep);
    let gone = project(
        tmp.path(),
        "gone",
        &manifest("gone"),
        &[("app.py", &fixture_app()), ("other.txt", "x")],
    );
    server.deploy(&gone);
    let before = names_in(&code);
    assert_eq!(before.len(), 3, "{before:?}");

    let out = server.cli(&["rm", "gone-dev-app"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = names_in(&code);
    assert_eq!(
        after.len(),
        2,
        "the removed function's code is freed: {after:?}"
    );
    assert!(
        first.iter().all(|f| after.contains(f)),
        "the first version of keep stays"
    );
    let rollback = server.cli(&["rollback", "keep-dev-app"]);
    assert!(
        rollback.status.success(),
        "{}",
        String::from_utf8_lossy(&rollback.stderr)
    );
    let resp = get(&client(), &format!("{}/keep/x", server.gateway)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}
