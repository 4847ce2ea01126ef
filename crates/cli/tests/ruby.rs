//! `ruby3.x` lambda functions against a real `rouse serve` on the machine's
//! `ruby`: an HTTP API route and the Invoke API, module state across warm
//! calls, raised errors with their class, `Module::Class.method` handlers
//! and init failures.

mod common;

use bytes::Bytes;
use common::*;
use serde_json::{json, Value};

const APP: &str = r#"require 'json'

COUNT = { n: 0 }

def handler(event:, context:)
  COUNT[:n] += 1
  if event.is_a?(Hash) && event['rawPath']
    return { statusCode: 200, headers: { 'content-type' => 'application/json' },
             body: JSON.generate({ path: event['rawPath'], n: COUNT[:n] }) }
  end
  raise ArgumentError, "boom: #{event['why']}" if event.is_a?(Hash) && event['why']

  puts "hello from handler #{COUNT[:n]}"
  { echo: event, n: COUNT[:n], request_id: context.aws_request_id,
    function: context.function_name, version: context.function_version,
    memory: context.memory_limit_in_mb, arn: context.invoked_function_arn,
    log_group: context.log_group_name, log_stream: context.log_stream_name,
    deadline_ms: context.deadline_ms, remaining_ms: context.get_remaining_time_in_millis }
end
"#;

const NESTED: &str = r#"module Shop
  class Orders
    @calls = 0

    def self.create(event:, context:)
      @calls += 1
      { order: event['item'], calls: @calls, request_id: context.aws_request_id }
    end
  end
end
"#;

const MANIFEST: &str = "service: rb
functions:
  app:
    runtime: ruby3.2
    handler: app.handler
    timeout: 10
    events:
      - httpApi: { path: /rb, method: get }
  orders:
    runtime: ruby3.3
    handler: lib/shop.Shop::Orders.create
  missing:
    runtime: ruby3.4
    handler: app.nope
  broken:
    runtime: ruby3.2
    handler: nothere.handler
";

async fn invoke(http: &HttpClient, server: &Server, function: &str, event: Value) -> Response {
    let url = format!(
        "{}/2015-03-31/functions/{function}/invocations",
        server.gateway
    );
    request(http, "POST", &url, &[], Bytes::from(event.to_string())).await
}

fn function_error(resp: &Response, error_type: &str) -> Value {
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.headers
            .get("x-amz-function-error")
            .and_then(|v| v.to_str().ok()),
        Some("Unhandled"),
        "{}",
        resp.text()
    );
    let doc = resp.json();
    assert_eq!(doc["errorType"], error_type, "{doc}");
    doc
}

#[tokio::test(flavor = "multi_thread")]
async fn ruby_handlers_serve_routes_and_invokes() {
    let tmp = open_tempdir();
    let dir = project(
        tmp.path(),
        "rb",
        MANIFEST,
        &[("app.rb", APP), ("lib/shop.rb", NESTED)],
    );
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&dir);
    let http = client();

    let first = invoke(&http, &server, "rb-dev-app", json!({"a": 1})).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(first.headers.get("x-amz-function-error").is_none());
    let doc = first.json();
    assert_eq!(doc["echo"], json!({"a": 1}), "{doc}");
    assert_eq!(doc["n"], 1);
    assert_eq!(doc["function"], "rb-dev-app");
    assert_eq!(doc["version"], "$LATEST");
    assert!(
        doc["memory"].as_str().is_some_and(|m| !m.is_empty()),
        "{doc}"
    );
    assert!(
        doc["arn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":rb-dev-app")),
        "{doc}"
    );
    assert!(doc["log_group"].as_str().is_some(), "{doc}");
    assert!(doc["log_stream"].as_str().is_some(), "{doc}");
    assert!(doc["deadline_ms"].as_i64().unwrap_or(0) > 0, "{doc}");
    let remaining = doc["remaining_ms"].as_i64().unwrap_or(0);
    assert!(remaining > 0 && remaining <= 10_000, "{doc}");
    assert_eq!(
        doc["request_id"],
        first.headers["x-amzn-requestid"].to_str().unwrap()
    );

    // A raised exception comes back as Lambda reports it, with its class;
    // the same warm process serves the next call.
    let failed = invoke(&http, &server, "rb-dev-app", json!({"why": "bad"})).await;
    let error = function_error(&failed, "ArgumentError");
    assert_eq!(error["errorMessage"], "boom: bad");
    let stack = error["stackTrace"].as_array().expect("stackTrace");
    assert!(
        stack
            .iter()
            .any(|f| f.as_str().is_some_and(|f| f.contains("app.rb"))),
        "{error}"
    );
    assert!(
        !stack
            .iter()
            .any(|f| f.as_str().is_some_and(|f| f.contains("bootstrap.rb"))),
        "{error}"
    );

    let route = get(&http, &format!("{}/rb", server.gateway)).await;
    assert_eq!(route.status, 200, "{}", route.text());
    assert_eq!(route.json()["path"], "/rb");
    assert_eq!(route.json()["n"], 3, "one warm process served all three");

    // `Module::Class.method` in a subdirectory, its class state kept warm.
    for calls in 1..=2 {
        let resp = invoke(&http, &server, "rb-dev-orders", json!({"item": "tea"})).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        let doc = resp.json();
        assert_eq!(doc["order"], "tea", "{doc}");
        assert_eq!(doc["calls"], calls, "{doc}");
    }

    // Init failures go to /init/error with Lambda's error types.
    let missing = invoke(&http, &server, "rb-dev-missing", json!({})).await;
    let doc = function_error(&missing, "Runtime.HandlerNotFound");
    assert!(
        doc["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("app.nope")),
        "{doc}"
    );
    let broken = invoke(&http, &server, "rb-dev-broken", json!({})).await;
    let doc = function_error(&broken, "Runtime.ImportModuleError");
    assert!(
        doc["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("nothere")),
        "{doc}"
    );

    // Unbuffered stdout: the handler's line is in the function's log.
    let mut logs = String::new();
    let found = eventually(std::time::Duration::from_secs(5), || {
        logs = server.logs("rb-dev-app");
        logs.contains("hello from handler 1")
    })
    .await;
    assert!(found, "the handler's line never reached the log:\n{logs}");
}
