//! `rouse dev`: a local server that redeploys the project when a file changes.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const MANIFEST: &str = r#"service: devloop
functions:
  site:
    web:
      command: ["python3", "-u", "app.py"]
    events:
      - http: { path: "/{proxy+}", method: any }
"#;

fn app(message: &str) -> String {
    format!(
        r#"import http.server, os
MESSAGE = "{message}"
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = MESSAGE.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        print("served", self.path)
print("app started with", MESSAGE)
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#
    )
}

/// A running `rouse dev` whose stdout is collected line by line.
struct Dev {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Dev {
    fn start(project: &Path, data_dir: &Path) -> Dev {
        let mut child = Command::new(rouse_bin())
            .args([
                "dev",
                project.to_str().expect("utf-8"),
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--data-dir",
                data_dir.to_str().expect("utf-8"),
            ])
            .env("ROUSE_ADMIN_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rouse dev");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("[rouse dev] {line}");
                    lines.lock().expect("lines").push(line);
                }
            });
        }
        Dev { child, lines }
    }

    fn output(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// Waits until a line containing `needle` has been printed; returns it.
    fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .expect("lines")
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} within {timeout:?}; output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The gateway URL from the server banner.
    fn gateway(&self) -> String {
        let banner = self.wait_for_line("serving functions at", Duration::from_secs(30));
        banner
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("gateway url in the banner")
            .trim_end_matches([',', ')'])
            .to_string()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        signal(self.child.id(), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Saves `content` the way editors do: a temporary file renamed over the original.
fn save(path: &Path, content: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, content).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// Polls `url` until it answers `expected`; returns how long that took.
async fn time_until_answer(client: &HttpClient, url: &str, expected: &str) -> Duration {
    let started = Instant::now();
    loop {
        let resp = get(client, url).await;
        if resp.status == 200 && resp.text() == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still {} {:?} after 15s",
            resp.status,
            resp.text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_redeploys_within_a_second_of_a_save_and_survives_a_broken_manifest() {
    let tmp = open_tempdir();
    // The data directory inside the project, as with a plain `rouse dev` run
    // from the project: rouse's own writes there must not trigger redeploys.
    let project = project(tmp.path(), "site", MANIFEST, &[("app.py", &app("v1"))]);
    let dev = Dev::start(&project, &project.join(".rouse"));
    let gateway = dev.gateway();
    let client = client();
    let url = format!("{gateway}/hello");
    assert_eq!(get(&client, &url).await.text(), "v1");
    // Logs of the function stream to the terminal.
    dev.wait_for_line("served /hello", Duration::from_secs(10));

    // An edit is live within a second of the save.
    save(&project.join("app.py"), &app("v2"));
    let took = time_until_answer(&client, &url, "v2").await;
    eprintln!("save → new answer: {took:?}");
    assert!(took < Duration::from_secs(1), "redeploy took {took:?}");
    dev.wait_for_line(
        "Redeployed after a change to app.py",
        Duration::from_secs(5),
    );

    // Nothing changes while nobody saves: serving requests and writing logs
    // (inside the watched tree) must not cause redeploys.
    for _ in 0..5 {
        assert_eq!(get(&client, &url).await.text(), "v2");
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let redeploys = dev.output().matches("Redeployed").count();
    assert_eq!(redeploys, 1, "unexpected redeploys:\n{}", dev.output());

    // A broken manifest is reported with its position; v2 keeps serving.
    save(
        &project.join("rouse.yaml"),
        &MANIFEST.replace("command:", "comand:"),
    );
    let error = dev.wait_for_line("redeploy failed", Duration::from_secs(5));
    assert!(error.contains("rouse.yaml:"), "no file:line:col in {error}");
    assert_eq!(get(&client, &url).await.text(), "v2");

    // Fixing it (and the app) deploys again.
    save(&project.join("app.py"), &app("v3"));
    save(&project.join("rouse.yaml"), MANIFEST);
    let took = time_until_answer(&client, &url, "v3").await;
    assert!(took < Duration::from_secs(2), "redeploy took {took:?}");
}
