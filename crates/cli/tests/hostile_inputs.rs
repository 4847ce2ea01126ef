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
