//! Table-driven tests of the whole pipeline on in-memory manifests.

use std::collections::BTreeMap;

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "TEST_REGION" => Some("eu-west-1".to_owned()),
        "TEST_MEMORY" => Some("768".to_owned()),
        _ => None,
    }
}

fn load(flavor: Flavor, stage: Option<&str>, src: &str) -> Result<Loaded, ManifestError> {
    let file = match flavor {
        Flavor::Rouse => "rouse.yaml",
        Flavor::Serverless => "serverless.yml",
    };
    let opts = LoadOptions {
        stage: stage.map(str::to_owned),
    };
    parse_with_env(src, file, flavor, &opts, &env)
}

fn rouse(src: &str) -> Loaded {
    load(Flavor::Rouse, None, src).unwrap_or_else(|e| panic!("{e}\n{src}"))
}

fn sls(src: &str) -> Loaded {
    load(Flavor::Serverless, None, src).unwrap_or_else(|e| panic!("{e}\n{src}"))
}

fn only(loaded: &Loaded) -> &FunctionSpec {
    assert_eq!(loaded.spec.functions.len(), 1);
    &loaded.spec.functions[0]
}

/// A web function with one route, for tests about something else.
const SITE: &str = "  site:\n    web: { command: ./server }\n    events: [ { http: GET / } ]\n";

#[test]
fn rouse_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "service: shop\nfunctions:\n  site:\n    web:\n      comand: [\"./server\"]\n",
            "rouse.yaml:5:7: unknown field `comand` in web, expected one of: command, port, readiness, rewrite, socketActivation, network (did you mean `command`?)",
        ),
        (
            "service: shop\nfuncions: {}\n",
            "rouse.yaml:2:1: unknown field `funcions` at the top level, expected one of: service, provider, scaling, functions, stageRouting (did you mean `functions`?)",
        ),
        (
            "service: shop\nprovider: { runtime: python3.12, memorysize: 3 }\nfunctions: {}\n",
            "rouse.yaml:2:34: unknown field `memorysize` in provider, expected one of: name, runtime, stage, region, environment, memorySize, timeout, httpApi (did you mean `memorySize`?)",
        ),
        (
            "service: shop\nfunctions:\n  f:\n    handler: a.b\n    runtime: provided\n    layers: []\n",
            "rouse.yaml:6:5: unknown field `layers` in function `f`, expected one of: web, handler, runtime, environment, memorySize, timeout, concurrency, scaling, events, maximumRetryAttempts, maximumEventAge, destinations, name",
        ),
        (
            "service: shop\nfunctions:\n  thumbs:\n    runtime: python3.12\n    handler: app.handler\n    timeout: soon\n",
            "rouse.yaml:6:14: `timeout` must be a number of seconds, found the string \"soon\"",
        ),
        (
            "service: shop\nfunctions:\n  f:\n    handler: a.b\n    runtime: provided\n    memorySize: [1]\n",
            "rouse.yaml:6:17: `memorySize` must be a whole number, found a list",
        ),
        (
            "service: shop\nfunctions:\n  f:\n    handler: a.b\n    runtime: provided\n    timeout: 0\n",
            "rouse.yaml:6:14: `timeout` must be more than 0 and at most 31536000 seconds (365 days), found 0",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web:\n      port: 8080\n",
            "rouse.yaml:4:5: `web` needs a `command`: the server to start, as a list like [\"./server\", \"--port\", \"${PORT}\"] or a string run with `sh -c`",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web: { command: [] }\n",
            "rouse.yaml:4:21: `command` must start with the program to run",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web: { command: ./server }\n    handler: app.handler\n",
            "rouse.yaml:5:5: function `site` has both `web` and `handler`; a function is either a web server (`web:`) or a lambda handler (`handler:`), not both",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    timeout: 3\n",
            "rouse.yaml:3:3: function `site` needs either `web:` (a web server to start) or `handler:` (a lambda handler like `app.handler`)",
        ),
        (
            "service: shop\nfunctions:\n  f:\n    handler: index.handler\n",
            "rouse.yaml:3:3: lambda function `f` needs a `runtime` (like python3.12, nodejs20.x or provided.al2023), on the function or under `provider`",
        ),
        (
            "service: shop\nprovider: { runtime: nodejs20.x }\nfunctions:\n  f:\n    handler: index.handler\n    concurrency: 8\n",
            "rouse.yaml:6:18: `concurrency` must be 1 for lambda functions: a lambda instance takes one request at a time (use `scaling.maxInstances` to run more at once)",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web:\n      command: nginx\n      rewrite:\n        - { file: nginx.conf, match: 'listen (\\d+;', replace: x }\n",
            "rouse.yaml:7:38: `match` is not a valid regular expression: unclosed group",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web:\n      command: nginx\n      rewrite: [ { file: /etc/passwd, match: a, replace: b } ]\n",
            "rouse.yaml:6:26: rewrite `file` must be a path inside the project, relative and without `..`, found \"/etc/passwd\"",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web:\n      command: nginx\n      rewrite: [ { file: a.conf, replace: b } ]\n",
            "rouse.yaml:6:18: a rewrite needs `match`; a rewrite is `{ file, match, replace }`",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web: { command: x, readiness: { path: healthz } }\n",
            "rouse.yaml:4:43: readiness `path` must start with `/`, found \"healthz\"",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web: { command: x, port: 70000 }\n",
            "rouse.yaml:4:30: `port` must be between 1 and 65535, found 70000",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web: { command: ./server }\n    events:\n      - http: { path: \"/{proxy+}/x\", method: get }\n",
            "rouse.yaml:6:23: invalid path `/{proxy+}/x`: `{proxy+}` takes the rest of the path, so it must be the last segment",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web: { command: x }\n    events: [ { http: \"FETCH /x\" } ]\n",
            "rouse.yaml:5:23: unknown HTTP method `FETCH`, expected one of: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY (or `*` for any)",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web: { command: x }\n    events: [ { http: { path: /x } } ]\n",
            "rouse.yaml:5:23: http event needs `method`, like `http: { path: /users/{id}, method: get }`",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web: { command: x }\n    events: [ { http: \"/x\" } ]\n",
            "rouse.yaml:5:23: `http` as a string must be \"METHOD /path\", like \"GET /users/{id}\", found \"/x\"",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web: { command: x }\n    events:\n      - htp: GET /x\n",
            "rouse.yaml:6:9: unknown event type `htp`, expected one of: http, httpApi, schedule, stream, sqs (did you mean `http`?)",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web: { command: x }\n    events:\n      - http:\n        path: /x\n",
            "rouse.yaml:7:9: an event has exactly one type, found `http`, `path`; is `path` meant to be indented under `http`?",
        ),
        (
            "service: shop\nfunctions:\n  site:\n    web: { command: x }\n    events: http\n",
            "rouse.yaml:5:13: `events` must be a list, found the string \"http\"",
        ),
        (
            "service: shop\nfunctions:\n  f:\n    handler: h\n    runtime: provided\n    events: [ { schedule: \"every 5 minutes\" } ]\n",
            "rouse.yaml:6:27: invalid schedule `every 5 minutes`: expected `rate(<number> minute|minutes|hour|hours|day|days)` or `cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)`",
        ),
        (
            "service: shop\nfunctions:\n  f:\n    web: { command: x }\n    events: [ { http: \"GET /u/{id}\" } ]\n  g:\n    web: { command: x }\n    events: [ { http: \"get /u/{name}\" } ]\n",
            "rouse.yaml:8:15: http route `GET /u/{name}` is already used by function `f` (line 5)",
        ),
        (
            "service: shop\nscaling: { minInstances: 3 }\nfunctions:\n  f:\n    web: { command: x }\n    scaling: { maxInstances: 2 }\n",
            "rouse.yaml:6:30: `minInstances` (3) must not be more than `maxInstances` (2)",
        ),
        (
            "service: shop\nscaling: { burst: 0 }\nfunctions: {}\n",
            "rouse.yaml:2:19: `burst` must be at least 1, found 0",
        ),
        (
            "service: shop\nscaling: { maxInstances: 0 }\nfunctions: {}\n",
            "rouse.yaml:2:26: `maxInstances` must be at least 1, found 0",
        ),
        (
            "service: shop\nscaling: { idleTimeout: -5 }\nfunctions: {}\n",
            "rouse.yaml:2:25: `idleTimeout` must be more than 0 and at most 31536000 seconds (365 days), found -5",
        ),
        (
            "service: shop\nprovider:\n  environment:\n    FOO:\nfunctions: {}\n",
            "rouse.yaml:4:8: environment variable `FOO` has no value; write `FOO: \"\"` for an empty one",
        ),
        (
            "service: shop\nprovider:\n  environment: [A]\nfunctions: {}\n",
            "rouse.yaml:3:16: `environment` must be a mapping of variable names to values, found a list",
        ),
        (
            "service: 1shop\nfunctions: {}\n",
            "rouse.yaml:1:10: invalid service name \"1shop\": use letters, digits and `-`, starting with a letter, at most 64",
        ),
        (
            "service: shop\nprovider: { stage: \"pr od\" }\nfunctions: {}\n",
            "rouse.yaml:2:20: invalid stage \"pr od\": use letters, digits, `-` and `_`, starting with a letter or digit, at most 64",
        ),
        (
            "service: shop\nfunctions:\n  \"my fn\":\n    handler: h\n",
            "rouse.yaml:3:3: invalid function name \"my fn\": use letters, digits, `-` and `_`, starting with a letter or digit, at most 64",
        ),
        (
            "functions: {}\n",
            "rouse.yaml:1:1: missing `service`: the name of this service, like `service: shop`",
        ),
        (
            "service: shop\n",
            "rouse.yaml:1:1: missing `functions`: define at least one web or lambda function",
        ),
        (
            "service: shop\nfunctions: {}\n",
            "rouse.yaml:2:12: `functions` is empty: define at least one function",
        ),
        (
            "# nothing here\n",
            "rouse.yaml:1:1: the manifest is empty; expected a mapping with `service`, `provider` and `functions`",
        ),
        (
            "- a\n- b\n",
            "rouse.yaml:1:1: the manifest must be a mapping with `service`, `provider` and `functions`, found a list",
        ),
        // Syntax errors keep the parser's position and wording.
        (
            "service: shop\nfunctions:\n  f:\n    handler: x\n   runtime: y\n",
            "rouse.yaml:5:4: while parsing a block mapping, did not find expected key",
        ),
        ("service: [shop\n", "rouse.yaml:1:10: unclosed bracket '['"),
        (
            "service: a\nservice: b\n",
            "rouse.yaml:2:1: duplicate mapping key `service` is not allowed here",
        ),
    ];
    for (src, expected) in cases {
        match load(Flavor::Rouse, None, src) {
            Ok(_) => panic!("expected an error for:\n{src}"),
            Err(e) => assert_eq!(e.to_string(), *expected, "for:\n{src}"),
        }
    }
}

#[test]
fn error_fields_are_one_based_positions() {
    let e = load(
        Flavor::Rouse,
        None,
        "service: shop\nfunctions:\n  f:\n    web: {}\n",
    )
    .unwrap_err();
    assert_eq!(
        (e.file.as_str(), e.line, e.column),
        ("rouse.yaml", Some(4), Some(5))
    );
    assert!(
        e.message.starts_with("`web` needs a `command`"),
        "{}",
        e.message
    );
    let whole = ManifestError::whole_file("dir", "no manifest found");
    assert_eq!(whole.to_string(), "dir: no manifest found");
}

#[test]
fn defaults() {
    let web = rouse(&format!("service: shop\nfunctions:\n{SITE}"));
    let site = only(&web);
    assert_eq!(web.spec.stage, "dev");
    assert_eq!(site.name, "shop-dev-site");
    assert_eq!(site.short_name, "site");
    assert_eq!(site.memory_size, 1024);
    assert_eq!(site.timeout_secs, 30.0);
    assert_eq!(site.concurrency, 64);
    assert_eq!(site.scaling, Scaling::default());
    assert!(site.environment.is_empty());
    assert_eq!(
        site.kind,
        FunctionKind::Web(WebSpec {
            command: vec!["sh".into(), "-c".into(), "./server".into()],
            port: None,
            readiness: Readiness::default(),
            rewrite: vec![],
            socket_activation: false,
            no_network: false,
        })
    );
    assert!(web.warnings.is_empty(), "{:?}", web.warnings);

    let lambda = rouse("service: shop\nprovider: { runtime: python3.12 }\nfunctions:\n  f: { handler: app.handler }\n");
    let f = only(&lambda);
    assert_eq!(f.timeout_secs, 6.0);
    assert_eq!(f.concurrency, 1);
    assert_eq!(
        f.kind,
        FunctionKind::Lambda(LambdaSpec {
            runtime: "python3.12".into(),
            handler: "app.handler".into()
        })
    );
}

#[test]
fn stage_precedence() {
    let src = |stage: &str| format!("service: shop\nprovider: {{ {stage} }}\nfunctions:\n{SITE}");
    for (provider, cli, expected) in [
        ("", None, "dev"),
        ("stage: qa", None, "qa"),
        ("stage: qa", Some("prod"), "prod"),
        ("", Some("prod"), "prod"),
    ] {
        let loaded = load(Flavor::Rouse, cli, &src(provider)).unwrap();
        assert_eq!(loaded.spec.stage, expected);
        assert_eq!(only(&loaded).name, format!("shop-{expected}-site"));
    }
    let e = load(Flavor::Rouse, Some("a b"), &src("")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "rouse.yaml: --stage: invalid stage \"a b\": use letters, digits, `-` and `_`, starting with a letter or digit, at most 64"
    );
}

#[test]
fn values_written_as_strings_or_numbers() {
    let loaded = rouse(
        "service: shop
provider:
  environment: { N: 5, F: 1.5, B: true, MODE: '0755', S: text, Z: 0755 }
functions:
  f:
    web: { command: [./server, --port, 8080], port: '8080' }
    memorySize: '512'
    timeout: '2.5'
    concurrency: 8
    environment: { S: overridden }
    events: [ { http: GET / } ]
",
    );
    let f = only(&loaded);
    assert_eq!(f.memory_size, 512);
    assert_eq!(f.timeout_secs, 2.5);
    assert_eq!(f.concurrency, 8);
    let expected: BTreeMap<String, String> = [
        ("N", "5"),
        ("F", "1.5"),
        ("B", "true"),
        ("MODE", "0755"),
        ("S", "overridden"),
        ("Z", "0755"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(f.environment, expected);
    let FunctionKind::Web(web) = &f.kind else {
        panic!("{f:?}")
    };
    assert_eq!(web.command, ["./server", "--port", "8080"]);
    assert_eq!(web.port, Some(8080));
}

#[test]
fn scaling_overlays_key_by_key() {
    let loaded = rouse(
        "service: shop
scaling: { idleTimeout: 120, maxInstances: 4, queueTimeout: 5, burstRefillPerMinute: 60 }
functions:
  a:
    web: { command: x }
    scaling: { idleTimeout: 60, minInstances: 1, burst: 3 }
    events: [ { http: GET /a } ]
  b:
    web: { command: x }
    events: [ { http: GET /b } ]
",
    );
    let [a, b] = loaded.spec.functions.as_slice() else {
        panic!("{loaded:?}")
    };
    let base = Scaling {
        idle_timeout_secs: 120.0,
        max_instances: 4,
        queue_timeout_secs: 5.0,
        burst_refill_per_minute: 60,
        ..Scaling::default()
    };
    assert_eq!(b.scaling, base);
    assert_eq!(b.scaling.burst, crate::DEFAULT_BURST);
    assert_eq!(
        a.scaling,
        Scaling {
            idle_timeout_secs: 60.0,
            min_instances: 1,
            burst: 3,
            ..base
        }
    );
}

#[test]
fn http_events() {
    let cases: &[(Flavor, &str, Event)] = &[
        (
            Flavor::Rouse,
            "{ http: { path: \"/{proxy+}\", method: any } }",
            http("ANY", "/{proxy+}"),
        ),
        (
            Flavor::Rouse,
            "{ http: { path: /x, method: '*' } }",
            http("ANY", "/x"),
        ),
        (
            Flavor::Rouse,
            "{ http: \"GET /users/{id}\" }",
            http("GET", "/users/{id}"),
        ),
        (
            Flavor::Rouse,
            "{ http: \"  delete   /a/b  \" }",
            http("DELETE", "/a/b"),
        ),
        (
            Flavor::Rouse,
            "{ http: { path: /, method: Options } }",
            http("OPTIONS", "/"),
        ),
        (
            Flavor::Rouse,
            "{ httpApi: { path: /x, method: post } }",
            http_api("POST", "/x"),
        ),
        (
            Flavor::Rouse,
            "{ httpApi: \"*\" }",
            http_api("ANY", "/{proxy+}"),
        ),
        (
            Flavor::Rouse,
            "{ httpApi: { path: '*', method: '*' } }",
            http_api("ANY", "/{proxy+}"),
        ),
        (
            Flavor::Rouse,
            "{ httpApi: \"PATCH /a/{b}/c/{d+}\" }",
            http_api("PATCH", "/a/{b}/c/{d+}"),
        ),
        (
            Flavor::Serverless,
            "{ http: { path: 'users/{id}', method: get } }",
            http("GET", "/users/{id}"),
        ),
        (
            Flavor::Serverless,
            "{ http: \"GET users\" }",
            http("GET", "/users"),
        ),
        (
            Flavor::Serverless,
            "{ http: { path: '', method: get } }",
            http("GET", "/"),
        ),
    ];
    for (flavor, event, expected) in cases {
        let src = format!(
            "service: s\nfunctions:\n  f:\n    web: {{ command: x }}\n    events: [ {event} ]\n"
        );
        let loaded = load(*flavor, None, &src).unwrap_or_else(|e| panic!("{event}: {e}"));
        assert_eq!(
            only(&loaded).events,
            std::slice::from_ref(expected),
            "{event}"
        );
    }
}

fn http(method: &str, path: &str) -> Event {
    Event::Http(HttpEvent {
        path: path.into(),
        method: method.into(),
        policy: Default::default(),
    })
}

fn http_api(method: &str, path: &str) -> Event {
    Event::HttpApi(HttpEvent {
        path: path.into(),
        method: method.into(),
        policy: Default::default(),
    })
}

#[test]
fn bad_paths() {
    let cases = [
        ("users", "a path must start with `/`"),
        ("/a//b", "empty segment (`//` or a trailing `/`)"),
        ("/a/", "empty segment (`//` or a trailing `/`)"),
        ("/a b", "a path may not contain spaces, `?` or `#`"),
        ("/a?b=1", "a path may not contain spaces, `?` or `#`"),
        ("/files/{name}.json", "a parameter must be a whole segment, like `/files/{name}`"),
        ("/a/{}", "parameter name `` must start with a letter and contain only letters, digits, `_` and `-`"),
        ("/a/{1x}", "parameter name `1x` must start with a letter and contain only letters, digits, `_` and `-`"),
        ("/{p+}/x", "`{p+}` takes the rest of the path, so it must be the last segment"),
        ("/{id}/{id}", "parameter `id` appears twice"),
        ("/{a", "a parameter must be a whole segment, like `/files/{name}`"),
    ];
    for (path, why) in cases {
        let src = format!("service: s\nfunctions:\n  f:\n    web: {{ command: x }}\n    events:\n      - http: {{ method: get, path: '{path}' }}\n");
        let e = load(Flavor::Rouse, None, &src).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("rouse.yaml:6:36: invalid path `{path}`: {why}"),
            "{path}"
        );
    }
}

#[test]
fn schedules() {
    let cases: &[(&str, &[&str])] = &[
        ("schedule: rate(5 minutes)", &["rate(5 minutes)"]),
        ("schedule: 'cron(0 12 * * ? *)'", &["cron(0 12 * * ? *)"]),
        ("schedule: { rate: rate(1 hour) }", &["rate(1 hour)"]),
        (
            "schedule: { rate: [rate(1 hour), rate(2 days)] }",
            &["rate(1 hour)", "rate(2 days)"],
        ),
        ("schedule: { rate: rate(1 hour), enabled: false }", &[]),
        (
            "schedule: { rate: rate(1 hour), enabled: true }",
            &["rate(1 hour)"],
        ),
    ];
    for (event, expected) in cases {
        let src = format!("service: s\nprovider: {{ runtime: provided }}\nfunctions:\n  f:\n    handler: h\n    events:\n      - {event}\n");
        let loaded = load(Flavor::Rouse, None, &src).unwrap_or_else(|e| panic!("{event}: {e}"));
        let got: Vec<Event> = expected
            .iter()
            .map(|e| Event::Schedule {
                expression: (*e).to_owned(),
            })
            .collect();
        assert_eq!(only(&loaded).events, got, "{event}");
    }
    for bad in [
        "rate(0 minutes)",
        "rate(5 weeks)",
        "rate(five minutes)",
        "cron(* * *)",
        "at(2024)",
    ] {
        let src = format!("service: s\nprovider: {{ runtime: provided }}\nfunctions:\n  f:\n    handler: h\n    events: [ {{ schedule: '{bad}' }} ]\n");
        let e = load(Flavor::Rouse, None, &src).unwrap_err();
        assert!(
            e.message.starts_with(&format!("invalid schedule `{bad}`")),
            "{e}"
        );
    }
}

#[test]
fn web_function_warnings() {
    let loaded = rouse(
        "service: s\nprovider: { runtime: python3.12 }\nfunctions:\n  f:\n    web: { command: x }\n    runtime: nodejs20.x\n",
    );
    assert_eq!(
        loaded.warnings,
        ["rouse.yaml:6:5: `runtime` is ignored for web function `f`: it runs its own `command`"]
    );
    // Web functions do not inherit provider.runtime into anything.
    assert!(matches!(only(&loaded).kind, FunctionKind::Web(_)));
}

#[test]
fn serverless_unsupported_keys_are_warnings() {
    let loaded = sls("service: s
plugins: [serverless-offline]
provider:
  name: aws
  runtime: nodejs20.x
  iam: { role: { statements: [] } }
functions:
  f:
    handler: index.handler
    layers: [arn]
    events:
      - sqs: arn:aws:sqs:q
      - http: { path: x, method: get, private: true }
      - htp: GET /
");
    assert_eq!(
        loaded.warnings,
        [
            "serverless.yml:2:1: `plugins` is not supported by rouse and is ignored",
            "serverless.yml:6:3: `provider.iam` is not supported by rouse and is ignored",
            "serverless.yml:10:5: `functions.f.layers` is not supported by rouse and is ignored",
            "serverless.yml:12:14: `arn:aws:sqs:q` is not an SQS queue ARN (`arn:aws:sqs:REGION:ACCOUNT:NAME`); the event is ignored",
            "serverless.yml:13:39: `functions.f.events[1].http.private` is not supported by rouse and is ignored",
            "serverless.yml:14:9: `functions.f.events[2].htp` is not supported by rouse and is ignored (did you mean `http`?)",
        ]
    );
    assert_eq!(only(&loaded).events, [http("GET", "/x")]);
}

#[test]
fn serverless_variables() {
    let loaded = sls("service: shop
custom:
  prefix: ${self:service}-${opt:stage}
  mem: { dev: 256, prod: 2048 }
  env: { FROM_CUSTOM: yes }
provider:
  runtime: python3.12
  stage: ${opt:stage, 'dev'}
  memorySize: ${self:custom.mem.${self:provider.stage}}
  environment:
    TABLE: ${self:custom.prefix}-users
    REGION: ${env:TEST_REGION}
    MISSING: ${env:NOT_SET, 'fallback'}
    NESTED: ${env:NOT_SET, ${self:service}}
    NUMBER: ${env:NOT_SET, 42}
    STAGE: ${sls:stage}
    FIRST: ${self:functions.api.events.0.http.path}
functions:
  api:
    handler: app.handler
    timeout: ${env:TEST_MEMORY}
    environment: ${self:custom.env}
    events:
      - http: { path: '/${self:service}', method: get }
  site:
    web: { command: [./server, --port, '${PORT}'] }
    events: [ { httpApi: '*' } ]
");
    let api = &loaded.spec.functions[0];
    assert_eq!(api.memory_size, 256);
    assert_eq!(api.timeout_secs, 768.0);
    let env: Vec<(&str, &str)> = api
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("FIRST", "/shop"),
            ("FROM_CUSTOM", "yes"),
            ("MISSING", "fallback"),
            ("NESTED", "shop"),
            ("NUMBER", "42"),
            ("REGION", "eu-west-1"),
            ("STAGE", "dev"),
            ("TABLE", "shop-dev-users"),
        ]
    );
    assert_eq!(api.events, [http("GET", "/shop")]);
    let FunctionKind::Web(web) = &loaded.spec.functions[1].kind else {
        panic!("{loaded:?}")
    };
    // `${PORT}` is rouse's own placeholder, not a Serverless variable.
    assert_eq!(web.command, ["./server", "--port", "${PORT}"]);

    let prod = load(Flavor::Serverless, Some("prod"), "service: shop\ncustom: { mem: { dev: 256, prod: 2048 } }\nprovider:\n  stage: ${opt:stage, 'dev'}\n  memorySize: ${self:custom.mem.${opt:stage}}\n  environment: { S: '${self:provider.stage}' }\nfunctions:\n  site:\n    web: { command: x }\n    events: [ { httpApi: '*' } ]\n").unwrap();
    assert_eq!(prod.spec.stage, "prod");
    let f = only(&prod);
    assert_eq!((f.name.as_str(), f.memory_size), ("shop-prod-site", 2048));
    assert_eq!(f.environment["S"], "prod");
}

#[test]
fn serverless_variable_errors() {
    let fn_part = "functions:\n  f: { handler: h, runtime: provided }\n";
    let cases = [
        (
            "provider:\n  environment:\n    X: ${env:NOT_SET}\n",
            "serverless.yml:4:8: cannot resolve `${env:NOT_SET}`: environment variable `NOT_SET` is not set",
        ),
        (
            "provider:\n  environment:\n    X: ${self:custom.nope}\n",
            "serverless.yml:4:8: cannot resolve `${self:custom.nope}`: `self:custom.nope` does not exist in the manifest",
        ),
        (
            "provider:\n  environment:\n    X: ${ssm:/a/b}\n",
            "serverless.yml:4:8: cannot resolve `${ssm:/a/b}`: the `ssm` variable source is not supported by rouse (supported: self, env, file(…), opt:stage, sls:stage)",
        ),
        (
            "provider:\n  environment:\n    X: ${opt:region}\n",
            "serverless.yml:4:8: cannot resolve `${opt:region}`: option `--region` is not available (rouse passes only --stage)",
        ),
        (
            "provider:\n  stage: ${opt:stage}\n",
            "serverless.yml:3:10: cannot resolve `${opt:stage}`: no --stage was given; add a default like `${opt:stage, 'dev'}`",
        ),
        (
            "custom: { a: '${self:custom.b}', b: '${self:custom.a}' }\nprovider:\n  environment:\n    X: ${self:custom.a}\n",
            "serverless.yml:2:37: `${self:custom.a}`: variables refer to each other too deeply; is a value referring to itself?",
        ),
        (
            "custom: { m: { a: 1 } }\nprovider:\n  environment:\n    X: \"x-${self:custom.m}\"\n",
            "serverless.yml:5:8: `${self:custom.m}` is a mapping, which cannot be part of a string",
        ),
        (
            "provider:\n  environment:\n    X: \"${self:custom\"\n",
            "serverless.yml:4:8: unterminated variable `${self:custom`: missing `}`",
        ),
        (
            "provider:\n  environment:\n    X: ${self:}\n",
            "serverless.yml:4:8: `self:` needs a path, like `self:custom.name`",
        ),
        (
            "custom: { t: soon }\nprovider:\n  timeout: ${self:custom.t}\n",
            "serverless.yml:4:12: `timeout` must be a number of seconds, found the string \"soon\"",
        ),
    ];
    for (middle, expected) in cases {
        let src = format!("service: s\n{middle}{fn_part}");
        let e = load(Flavor::Serverless, None, &src).unwrap_err();
        assert_eq!(e.to_string(), expected, "for:\n{src}");
    }
}

#[test]
fn unresolvable_variables_in_ignored_sections_are_fine() {
    let loaded = sls("service: s
custom:
  secret: ${ssm:/prod/secret}
  param: ${ssm:/x, 'p'}
resources:
  Resources:
    Q: { Properties: { Name: !Sub '${AWS::StackName}-${ssm:/q}' } }
provider:
  environment: { P: '${self:custom.param}' }
functions:
  f: { handler: h, runtime: provided }
");
    assert_eq!(only(&loaded).environment["P"], "p");
    assert_eq!(
        loaded.warnings,
        [
            "serverless.yml:2:1: `custom` is not supported by rouse and is ignored (its values are still available to `${self:custom...}` variables)",
            "serverless.yml:4:10: the `ssm` variable source is not supported by rouse (supported: self, env, file(…), opt:stage, sls:stage); using the fallback in `${ssm:/x, 'p'}`",
            "serverless.yml:7:8: `resources.Resources.Q` is not supported by rouse and is ignored (of resources, only `AWS::SQS::Queue` is made, as a rouse queue)",
        ]
    );
}

#[test]
fn rouse_yaml_has_no_variables() {
    let loaded = rouse(
        "service: s\nprovider:\n  environment: { A: '${self:service}' }\nfunctions:\n  f: { handler: h, runtime: provided }\n",
    );
    assert_eq!(only(&loaded).environment["A"], "${self:service}");
}

#[test]
fn anchors_and_merge_keys() {
    let loaded = rouse(
        "service: s
provider: { runtime: provided }
x-common: &common
  handler: h
  timeout: 9
functions:
  a:
    <<: *common
  b:
    <<: *common
    timeout: 3
",
    );
    let [a, b] = loaded.spec.functions.as_slice() else {
        panic!("{loaded:?}")
    };
    assert_eq!((a.timeout_secs, b.timeout_secs), (9.0, 3.0));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let e = load(
        Flavor::Rouse,
        None,
        "service: s\ncommon: 1\nfunctions: {}\n",
    )
    .unwrap_err();
    assert!(e.message.starts_with("unknown field `common`"), "{e}");
    let loaded = rouse(
        "service: s
provider: { runtime: provided, environment: &env { A: '1' } }
functions:
  a: { handler: h, environment: *env }
",
    );
    assert_eq!(only(&loaded).environment["A"], "1");
}

#[test]
fn flavor_from_path() {
    for (name, flavor) in [
        ("rouse.yaml", Flavor::Rouse),
        ("dir/rouse.yml", Flavor::Rouse),
        ("serverless.yml", Flavor::Serverless),
        ("/a/serverless.prod.yaml", Flavor::Serverless),
        ("other.yaml", Flavor::Rouse),
        ("", Flavor::Rouse),
    ] {
        assert_eq!(Flavor::from_path(name.as_ref()), flavor, "{name}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    // Runs on the default 2 MB test thread stack on purpose.
    let src = format!("service: s\nx: {}{}\n", "[".repeat(5000), "]".repeat(5000));
    let e = load(Flavor::Serverless, None, &src).unwrap_err();
    assert_eq!(e.line, Some(2));
    let mut block = String::from("service: s\nx:\n");
    for level in 1..200 {
        block.push_str(&format!("{}k:\n", "  ".repeat(level)));
    }
    assert!(load(Flavor::Rouse, None, &block).is_err());
}

/// Every prefix of a real manifest and a deterministic sprinkle of byte
/// changes: loading may fail, but must never panic.
#[test]
fn never_panics_on_mangled_input() {
    let full = "service: shop
custom: { a: '${self:service}', b: ${opt:stage, 'x'} }
provider: { runtime: python3.12, stage: '${opt:stage, \"dev\"}', environment: { K: '${env:HOME}' } }
scaling: { idleTimeout: 300, maxInstances: 4 }
functions:
  site:
    web:
      command: [\"nginx\", \"-g\", \"daemon off;\"]
      rewrite: [ { file: nginx.conf, match: 'listen\\s+\\d+;', replace: 'listen ${PORT};' } ]
    events: [ { http: { path: \"/{proxy+}\", method: any } }, { httpApi: '*' } ]
  thumbs: { handler: app.handler, events: [ { schedule: { rate: [rate(1 hour)] } } ] }
";
    let bytes = full.as_bytes();
    let specials = b"{}[]:,'\"$&*!|>-#%@` \n\t0";
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut inputs: Vec<String> = (0..=full.len())
        .filter(|i| full.is_char_boundary(*i))
        .map(|i| full[..i].to_owned())
        .collect();
    for _ in 0..600 {
        let mut mangled = bytes.to_vec();
        for _ in 0..3 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed % mangled.len() as u64) as usize;
            mangled[at] = specials[(seed >> 32) as usize % specials.len()];
        }
        inputs.push(String::from_utf8_lossy(&mangled).into_owned());
    }
    for input in &inputs {
        for flavor in [Flavor::Rouse, Flavor::Serverless] {
            let _ = load(flavor, None, input);
        }
    }
}

#[test]
fn stage_routing_defaults_and_settings() {
    let site = format!("service: shop\nfunctions:\n{SITE}");
    // rouse.yaml keeps routes as declared; serverless.yml serves stages
    // under `/{stage}`, as API Gateway and serverless-offline do.
    assert_eq!(only(&rouse(&site)).stage_routing, StageRouting::None);
    assert_eq!(only(&sls(&site)).stage_routing, StageRouting::Prefix);
    let hosted = rouse(&format!("stageRouting: host\n{site}"));
    assert_eq!(only(&hosted).stage_routing, StageRouting::Host);

    let custom = sls(&format!(
        "custom:\n  rouse:\n    stageRouting: ${{self:custom.mode}}\n  mode: none\n  other: ${{ssm:/x}}\n{site}"
    ));
    assert_eq!(only(&custom).stage_routing, StageRouting::None);
    // `custom` with rouse's own settings is not reported as ignored.
    assert!(custom.warnings.is_empty(), "{:?}", custom.warnings);

    let err = load(Flavor::Rouse, None, &format!("stageRouting: path\n{site}")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rouse.yaml:1:15: `stageRouting` must be one of prefix, host, none, found \"path\""
    );
    let loaded = sls(&format!(
        "custom: {{ rouse: {{ stageRoute: host }} }}\n{site}"
    ));
    assert_eq!(
        loaded.warnings,
        ["serverless.yml:1:20: `custom.rouse.stageRoute` is not supported by rouse and is ignored (did you mean `stageRouting`?)"]
    );
}

#[test]
fn socket_activation_is_a_boolean() {
    let on = rouse(
        "service: s\nfunctions:\n  w:\n    web: { command: ./server, socketActivation: true }\n",
    );
    let FunctionKind::Web(web) = &only(&on).kind else {
        panic!("not web")
    };
    assert!(web.socket_activation);
    let err = load(
        Flavor::Rouse,
        None,
        "service: s\nfunctions:\n  w:\n    web: { command: ./server, socketActivation: maybe }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`socketActivation` must be true or false"),
        "{err}"
    );
}

#[test]
fn network_none_needs_socket_activation() {
    let web = |extra: &str| {
        format!("service: s\nfunctions:\n  w:\n    web: {{ command: ./server, {extra} }}\n")
    };
    let on = rouse(&web("socketActivation: true, network: none"));
    let FunctionKind::Web(spec) = &only(&on).kind else {
        panic!("not web")
    };
    assert!(spec.no_network);

    let err = load(Flavor::Rouse, None, &web("network: none"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("rouse.yaml:4:") && err.contains("needs `socketActivation: true`"),
        "{err}"
    );
    let err = load(
        Flavor::Rouse,
        None,
        &web("socketActivation: true, network: off"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`network` must be none or host"), "{err}");
}

#[test]
fn async_invoke_settings_default_to_lambdas() {
    let loaded = rouse("service: s\nfunctions:\n  f: { handler: h, runtime: provided }\n");
    let config = &only(&loaded).async_invoke;
    assert_eq!(config.maximum_retry_attempts, 2);
    assert_eq!(config.maximum_event_age_secs, 21_600);
    assert_eq!((&config.on_success, &config.on_failure), (&None, &None));
}

#[test]
fn async_invoke_settings_and_destinations() {
    let function = |name: &str| Some(Destination::Function { name: name.into() });
    // (flavor, the function's extra keys, retries, age, onSuccess, onFailure)
    let cases = [
        (
            Flavor::Rouse,
            "maximumRetryAttempts: 0, maximumEventAge: 60, destinations: { onSuccess: done, onFailure: dlq }",
            0,
            60,
            function("s-dev-done"),
            Some(Destination::Dlq),
        ),
        (
            Flavor::Rouse,
            "destinations: { onFailure: other-service-dev-x }",
            2,
            21_600,
            None,
            function("other-service-dev-x"),
        ),
        (
            Flavor::Serverless,
            "maximumRetryAttempts: 1, destinations: { onFailure: 'arn:aws:lambda:us-east-1:123:function:s-dev-done' }",
            1,
            21_600,
            None,
            function("s-dev-done"),
        ),
        (
            Flavor::Serverless,
            "destinations: { onSuccess: { type: function, arn: 'arn:aws:lambda:eu-west-1:1:function:done' }, onFailure: dlq }",
            2,
            21_600,
            function("s-dev-done"),
            Some(Destination::Dlq),
        ),
        (
            Flavor::Serverless,
            "destinations: { onFailure: 'arn:aws:sqs:us-east-1:123:failures' }",
            2,
            21_600,
            None,
            None,
        ),
    ];
    for (flavor, extra, retries, age, on_success, on_failure) in cases {
        let src = format!(
            "service: s\nprovider: {{ runtime: provided }}\nfunctions:\n  f: {{ handler: h, {extra} }}\n  done: {{ handler: h }}\n"
        );
        let loaded = load(flavor, None, &src).unwrap_or_else(|e| panic!("{e}\n{src}"));
        let config = &loaded.spec.functions[0].async_invoke;
        assert_eq!(config.maximum_retry_attempts, retries, "{extra}");
        assert_eq!(config.maximum_event_age_secs, age, "{extra}");
        assert_eq!(config.on_success, on_success, "{extra}");
        assert_eq!(config.on_failure, on_failure, "{extra}");
    }
}

#[test]
fn bad_async_invoke_settings_say_what_is_allowed() {
    let cases = [
        (
            "maximumRetryAttempts: 3",
            "rouse.yaml:3:61: `maximumRetryAttempts` must be between 0 and 2, found 3",
        ),
        (
            "maximumEventAge: 30",
            "rouse.yaml:3:56: `maximumEventAge` must be between 60 and 21600, found 30",
        ),
        (
            "destinations: { onSuccess: dlq }",
            "rouse.yaml:3:66: `onSuccess` must name a function: the dead-letter list (`dlq`) is for failures",
        ),
        (
            "destinations: { onFailure: 'arn:aws:sns:x:1:topic' }",
            "rouse.yaml:3:66: `functions.f.destinations.onFailure`: rouse delivers to functions and its dead-letter list (`dlq`), not to arn:aws:sns:x:1:topic",
        ),
    ];
    for (extra, message) in cases {
        let src =
            format!("service: s\nfunctions:\n  f: {{ handler: h, runtime: provided, {extra} }}\n");
        let err = load(Flavor::Rouse, None, &src).expect_err(extra);
        assert_eq!(
            err.to_string().lines().next().unwrap_or(""),
            message,
            "{extra}"
        );
    }
}

#[test]
fn rules_are_reported_where_they_are_broken() {
    let cases: &[(&str, &str)] = &[
        (
            "service: s\nfunctions:\n  f:\n    handler: h\n    runtime: go1.x\n",
            "rouse.yaml:5:14: lambda function `f`: runtime go1.x is not supported; use provided.al2023 (your own bootstrap), python3.x, nodejsNN.x or ruby3.x",
        ),
        (
            // Inherited from `provider`: reported at the function using it.
            "service: s\nprovider: { runtime: java21 }\nfunctions:\n  f:\n    handler: h\n",
            "rouse.yaml:4:3: lambda function `f`: runtime java21 is not supported; use provided.al2023 (your own bootstrap), python3.x, nodejsNN.x or ruby3.x",
        ),
        (
            "service: s\nfunctions:\n  w:\n    web: { command: ./server }\n    events:\n      - http: GET /\n      - schedule: rate(5 minutes)\n",
            "rouse.yaml:7:9: web function `w` has a schedule, but schedules need a lambda function (a handler receives the scheduled event)",
        ),
    ];
    for (src, expected) in cases {
        let err = load(Flavor::Rouse, None, src).expect_err(src).to_string();
        assert_eq!(&err, expected, "{src}");
    }
    // A provider runtime rouse does not run is no error for web functions,
    // which do not use it.
    rouse("service: s\nprovider: { runtime: java21 }\nfunctions:\n  w:\n    web: { command: ./server }\n");
}

#[test]
fn serverless_files_get_the_same_rules() {
    let src = "service: s\nprovider: { name: aws, runtime: java21 }\nfunctions:\n  f:\n    handler: h.main\n";
    let err = load(Flavor::Serverless, None, src)
        .expect_err(src)
        .to_string();
    assert!(
        err.starts_with("serverless.yml:4:3: lambda function `f`: runtime java21 is not supported"),
        "{err}"
    );
}
