//! A server killed with SIGKILL has no chance to stop its instances; the
//! kernel must (`PR_SET_PDEATHSIG` on what rouse forks). Real `rouse
//! serve`, real instances, at every isolation level this host allows.

mod common;

use std::time::Duration;

use common::*;

const MANIFEST: &str = "service: orphans\nfunctions:\n  web:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n    events:\n      - http: { path: \"/web/{proxy+}\", method: any }\n  fn:\n    runtime: python3.12\n    handler: handler.handler\n    events:\n      - http: { path: \"/fn\", method: get }\n";
const HANDLER: &str =
    "def handler(event, context):\n    return {\"statusCode\": 200, \"body\": \"ok\"}\n";

/// `root` and every process below it, from `/proc/*/stat`.
fn tree(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found
}

fn instance_pids(server: &Server) -> Vec<u32> {
    let ls = server.cli(&["ls", "--output", "json"]);
    let functions: serde_json::Value = serde_json::from_slice(&ls.stdout).expect("ls json");
    functions
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["instances"].as_array().into_iter().flatten())
        .filter_map(|i| i["pid"].as_u64())
        .map(|pid| pid as u32)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_of_the_server_leaves_no_instance_process_alive() {
    let root = nix::unistd::geteuid().is_root();
    let levels: &[&str] = if root {
        &["none", "process", "namespaces"]
    } else {
        eprintln!("not root: only --isolation none is checked");
        &["none"]
    };
    for level in levels {
        let tmp = open_tempdir();
        let mut server = Server::start_with(&tmp.path().join("data"), &["--isolation", level]);
        let dir = project(
            tmp.path(),
            "orphans",
            MANIFEST,
            &[("app.py", &fixture_app()), ("handler.py", HANDLER)],
        );
        server.deploy(&dir);
        let http = client();
        let web = get(&http, &format!("{}/web/x", server.gateway)).await;
        assert_eq!(web.status, 200, "{level}: {}", web.text());
        let lambda = get(&http, &format!("{}/fn", server.gateway)).await;
        assert_eq!(lambda.status, 200, "{level}: {}", lambda.text());
        let instances = instance_pids(&server);
        assert_eq!(
            instances.len(),
            2,
            "{level}: a warm web and a warm lambda instance"
        );
        let processes: Vec<u32> = instances.iter().flat_map(|pid| tree(*pid)).collect();
        assert!(processes.iter().all(|pid| process_alive(*pid)));

        server.kill();
        let gone = eventually(Duration::from_secs(5), || {
            processes.iter().all(|pid| !process_alive(*pid))
        })
        .await;
        let left: Vec<u32> = processes
            .iter()
            .copied()
            .filter(|p| process_alive(*p))
            .collect();
        assert!(
            gone,
            "{level}: instance processes alive after SIGKILL of rouse: {left:?}"
        );
    }
}
