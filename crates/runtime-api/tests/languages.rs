//! What every bootstrap rouse ships does alike, run over one table of
//! languages: each row names the fixture handlers and Lambda's words for
//! that runtime. What only one runtime does is in `python.rs` / `node.rs`.

mod common;

use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};

struct Language {
    name: &'static str,
    lang: Lang,
    /// Returns `{"echo": event}`.
    echo: &'static str,
    /// Returns `{"count": n}`, n counting invocations of the process.
    counter: &'static str,
    /// Throws `<thrown> "boom: " + event.why`.
    boom: &'static str,
    thrown: &'static str,
    /// The error body's stack field and a file it names.
    stack_field: &'static str,
    stack_file: &'static str,
    /// A file the stack must not show (the bootstrap's own frames).
    hidden_frame: Option<&'static str>,
    missing_module_message: &'static str,
    missing_handler_message: &'static str,
    /// Prints `hello from handler`, returns `"done"`.
    prints: &'static str,
}

const LANGUAGES: [Language; 3] = [
    Language {
        name: "python",
        lang: Lang::Python,
        echo: "app.echo",
        counter: "app.counter",
        boom: "app.boom",
        thrown: "ValueError",
        stack_field: "stackTrace",
        stack_file: "app.py",
        hidden_frame: Some("bootstrap.py"),
        missing_module_message: "Unable to import module 'nope': No module named 'nope'",
        missing_handler_message: "Handler 'missing' missing on module 'app'",
        prints: "app.prints",
    },
    Language {
        name: "node",
        lang: Lang::Node,
        echo: "app.asyncEcho",
        counter: "app.counter",
        boom: "app.asyncBoom",
        thrown: "TypeError",
        // Lambda's Node runtime calls the stack `trace`.
        stack_field: "trace",
        stack_file: "app.js",
        hidden_frame: None,
        missing_module_message: "Error: Cannot find module 'nope'",
        missing_handler_message: "app.missing is undefined or not exported",
        prints: "app.logs",
    },
    Language {
        name: "ruby",
        lang: Lang::Ruby,
        echo: "app.echo",
        counter: "app.counter",
        boom: "app.boom",
        thrown: "ArgumentError",
        stack_field: "stackTrace",
        stack_file: "app.rb",
        hidden_frame: Some("bootstrap.rb"),
        missing_module_message: "Error loading nope: cannot load such file -- nope",
        missing_handler_message: "Handler not found: app.missing",
        prints: "app.prints",
    },
];

#[tokio::test]
async fn result_round_trips() {
    for l in &LANGUAGES {
        let instance = start(l.lang, l.echo).await;
        instance.ready().await;
        let outcome = instance
            .invoke(invocation("echo-1", r#"{"hello":"world","n":[1,2]}"#))
            .await;
        assert_eq!(
            response_body(outcome),
            serde_json::json!({"echo": {"hello": "world", "n": [1, 2]}}),
            "{}",
            l.name
        );
    }
}

#[tokio::test]
async fn module_state_persists_across_invokes() {
    for l in &LANGUAGES {
        let instance = start(l.lang, l.counter).await;
        instance.ready().await;
        for expected in 1..=3 {
            let outcome = instance
                .invoke(invocation(&format!("count-{expected}"), "{}"))
                .await;
            assert_eq!(
                response_body(outcome),
                serde_json::json!({ "count": expected }),
                "{}",
                l.name
            );
        }
    }
}

#[tokio::test]
async fn handler_exception_is_an_error_outcome() {
    for l in &LANGUAGES {
        let instance = start(l.lang, l.boom).await;
        instance.ready().await;
        let (error_type, body) = error_outcome(
            instance
                .invoke(invocation("err-1", r#"{"why":"testing"}"#))
                .await,
        );
        assert_eq!(error_type, "Runtime.Unhandled", "{}", l.name);
        assert_eq!(body["errorType"], l.thrown, "{}", l.name);
        assert_eq!(body["errorMessage"], "boom: testing", "{}", l.name);
        let stack = body[l.stack_field].as_array().expect("stack list");
        assert!(!stack.is_empty(), "{}", l.name);
        let names = |file: &str| {
            stack
                .iter()
                .any(|line| line.as_str().unwrap().contains(file))
        };
        assert!(names(l.stack_file), "{}: {stack:?}", l.name);
        if let Some(hidden) = l.hidden_frame {
            assert!(
                !names(hidden),
                "bootstrap frames should be hidden: {stack:?}"
            );
        }
        // The runtime survives a handler exception.
        let (_, again) = error_outcome(
            instance
                .invoke(invocation("err-2", r#"{"why":"again"}"#))
                .await,
        );
        assert_eq!(again["errorMessage"], "boom: again", "{}", l.name);
    }
}

#[tokio::test]
async fn missing_module_is_an_import_error_at_init() {
    for l in &LANGUAGES {
        let mut instance = start(l.lang, "nope.handler").await;
        let failure = within(instance.endpoint.initialized()).await.unwrap_err();
        assert_eq!(
            failure.error_type, "Runtime.ImportModuleError",
            "{}",
            l.name
        );
        let body: serde_json::Value = serde_json::from_slice(&failure.body).unwrap();
        assert_eq!(body["errorType"], "Runtime.ImportModuleError", "{}", l.name);
        assert_eq!(body["errorMessage"], l.missing_module_message);
        assert_ne!(instance.exit_code().await, Some(0), "{}", l.name);
    }
}

#[tokio::test]
async fn missing_handler_is_handler_not_found_at_init() {
    for l in &LANGUAGES {
        let mut instance = start(l.lang, "app.missing").await;
        let failure = within(instance.endpoint.initialized()).await.unwrap_err();
        assert_eq!(failure.error_type, "Runtime.HandlerNotFound", "{}", l.name);
        let body: serde_json::Value = serde_json::from_slice(&failure.body).unwrap();
        assert_eq!(body["errorMessage"], l.missing_handler_message);
        assert_ne!(instance.exit_code().await, Some(0), "{}", l.name);
    }
}

#[tokio::test]
async fn stdout_carries_only_the_handlers_output() {
    for l in &LANGUAGES {
        let mut instance = start(l.lang, l.prints).await;
        let stdout = instance.child.stdout.take().unwrap();
        instance.ready().await;
        let body = response_body(instance.invoke(invocation("print-1", "{}")).await);
        assert_eq!(body, "done", "{}", l.name);
        let mut lines = BufReader::new(stdout).lines();
        // Line-buffered: the print is visible while the process is still running.
        let first = within(lines.next_line()).await.unwrap();
        assert_eq!(first.as_deref(), Some("hello from handler"), "{}", l.name);
        instance.child.start_kill().unwrap();
        assert_eq!(within(lines.next_line()).await.unwrap(), None, "{}", l.name);
    }
}
