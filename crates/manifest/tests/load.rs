//! Loading real files from a project directory.

use std::collections::BTreeMap;
use std::path::Path;

use rouse_manifest::*;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write manifest");
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn route(method: &str, path: &str) -> HttpEvent {
    HttpEvent {
        path: path.to_owned(),
        method: method.to_owned(),
        policy: Default::default(),
    }
}

const ROUSE_YAML: &str = r#"service: shop
provider:
  name: aws
  runtime: python3.12
  stage: dev
  region: us-east-1
  environment: { LOG_LEVEL: info, WORKERS: 4 }
  memorySize: 512
scaling: { idleTimeout: 300, maxLifetime: 3600, maxInstances: 10, minInstances: 0, startTimeout: 30, queueTimeout: 30 }
functions:
  site:
    web:
      command: ["nginx", "-p", ".", "-c", "nginx.conf", "-g", "daemon off;"]
      port: 8080
      readiness: { path: /healthz }
      rewrite:
        - { file: nginx.conf, match: 'listen\s+\d+;', replace: 'listen ${PORT};' }
    concurrency: 32
    environment: { LOG_LEVEL: debug }
    memorySize: 256
    scaling: { idleTimeout: 60 }
    events:
      - http: { path: "/{proxy+}", method: any }
      - http: "GET /users/{id}"
      - httpApi: "*"
  thumbs:
    handler: app.handler
    timeout: "10"
    events:
      - httpApi: { path: "/thumbs/{id}", method: get }
      - schedule: "rate(5 minutes)"
"#;

#[test]
fn rouse_yaml_resolves_to_the_expected_spec() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "rouse.yaml", ROUSE_YAML);
    let loaded = load_dir(dir.path(), &LoadOptions::default()).expect("load");
    assert_eq!(loaded.path, dir.path().join("rouse.yaml"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

    let top_scaling = Scaling {
        idle_timeout_secs: 300.0,
        max_lifetime_secs: 3600.0,
        max_instances: 10,
        min_instances: 0,
        start_timeout_secs: 30.0,
        queue_timeout_secs: 30.0,
        ..Scaling::default()
    };
    let expected = DeploySpec {
        service: "shop".into(),
        stage: "dev".into(),
        functions: vec![
            FunctionSpec {
                stage_routing: StageRouting::None,
                async_invoke: Default::default(),
                name: "shop-dev-site".into(),
                short_name: "site".into(),
                kind: FunctionKind::Web(WebSpec {
                    command: ["nginx", "-p", ".", "-c", "nginx.conf", "-g", "daemon off;"]
                        .map(String::from)
                        .to_vec(),
                    port: Some(8080),
                    readiness: Readiness {
                        path: Some("/healthz".into()),
                    },
                    rewrite: vec![Rewrite {
                        file: "nginx.conf".into(),
                        pattern: r"listen\s+\d+;".into(),
                        replace: "listen ${PORT};".into(),
                    }],
                    socket_activation: false,
                    no_network: false,
                }),
                environment: env(&[("LOG_LEVEL", "debug"), ("WORKERS", "4")]),
                memory_size: 256,
                timeout_secs: 30.0,
                concurrency: 32,
                scaling: Scaling {
                    idle_timeout_secs: 60.0,
                    ..top_scaling.clone()
                },
                events: vec![
                    Event::Http(route("ANY", "/{proxy+}")),
                    Event::Http(route("GET", "/users/{id}")),
                    Event::HttpApi(route("ANY", "/{proxy+}")),
                ],
            },
            FunctionSpec {
                stage_routing: StageRouting::None,
                async_invoke: Default::default(),
                name: "shop-dev-thumbs".into(),
                short_name: "thumbs".into(),
                kind: FunctionKind::Lambda(LambdaSpec {
                    runtime: "python3.12".into(),
                    handler: "app.handler".into(),
                }),
                environment: env(&[("LOG_LEVEL", "info"), ("WORKERS", "4")]),
                memory_size: 512,
                timeout_secs: 10.0,
                concurrency: 1,
                scaling: top_scaling,
                events: vec![
                    Event::HttpApi(route("GET", "/thumbs/{id}")),
                    Event::Schedule {
                        expression: "rate(5 minutes)".into(),
                    },
                ],
            },
        ],
    };
    assert_eq!(loaded.spec, expected);

    // The spec is what the CLI sends on deploy: it survives JSON.
    let json = serde_json::to_string(&loaded.spec).expect("serialize");
    let back: DeploySpec = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, expected);
}

#[test]
fn stage_option_overrides_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "rouse.yaml", ROUSE_YAML);
    let opts = LoadOptions {
        stage: Some("prod".into()),
    };
    let loaded = load_dir(dir.path(), &opts).expect("load");
    assert_eq!(loaded.spec.stage, "prod");
    let names: Vec<&str> = loaded
        .spec
        .functions
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, ["shop-prod-site", "shop-prod-thumbs"]);
}

const SERVERLESS_YML: &str = r#"service: photos
frameworkVersion: '3'

plugins:
  - serverless-python-requirements
  - serverless-offline

custom:
  bucket: ${self:service}-${opt:stage}-uploads
  pythonRequirements:
    dockerizePip: true

provider:
  name: aws
  runtime: python3.12
  stage: ${opt:stage, 'dev'}
  region: ${env:ROUSE_MANIFEST_TEST_REGION, 'us-east-1'}
  memorySize: 256
  timeout: 20
  environment:
    BUCKET: ${self:custom.bucket}
    STAGE: ${self:provider.stage}
    REGION: ${self:provider.region}
  iam:
    role:
      statements:
        - Effect: Allow
          Action: ['s3:*']
          Resource: '*'

functions:
  list:
    handler: photos.list
    events:
      - http:
          path: photos
          method: get
          cors: true
      - http: GET photos/{id}
  cleanup:
    handler: photos.cleanup
    timeout: 60
    environment:
      DRY_RUN: false
    events:
      - schedule: rate(1 day)
      - sqs:
          arn: arn:aws:sqs:us-east-1:123456789012:queue

resources:
  Resources:
    Uploads:
      Type: AWS::S3::Bucket
      Properties:
        BucketName: ${self:custom.bucket}
"#;

#[test]
fn serverless_yml_resolves_with_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "serverless.yml", SERVERLESS_YML);
    // A variable no other test uses, so setting it here affects nothing else.
    std::env::set_var("ROUSE_MANIFEST_TEST_REGION", "eu-central-1");
    let loaded = load_dir(dir.path(), &LoadOptions::default()).expect("load");

    let file = dir.path().join("serverless.yml").display().to_string();
    let warnings: Vec<String> = [
        "2:1: `frameworkVersion` is not supported by rouse and is ignored",
        "4:1: `plugins` is not supported by rouse and is ignored",
        "8:1: `custom` is not supported by rouse and is ignored (its values are still available to `${self:custom...}` variables)",
        "24:3: `provider.iam` is not supported by rouse and is ignored",
        "47:9: `functions.cleanup.events[1].sqs` is not delivered by rouse yet (queues are not polled); the event is ignored",
        "53:7: `resources.Resources.Uploads` is not supported by rouse and is ignored (of resources, only `AWS::SQS::Queue` is made, as a rouse queue)",
    ]
    .iter()
    .map(|w| format!("{file}:{w}"))
    .collect();
    assert_eq!(loaded.warnings, warnings);

    let provider_env = [
        ("BUCKET", "photos-dev-uploads"),
        ("REGION", "eu-central-1"),
        ("STAGE", "dev"),
    ];
    let mut cleanup_env = provider_env.to_vec();
    cleanup_env.push(("DRY_RUN", "false"));
    let expected = DeploySpec {
        service: "photos".into(),
        stage: "dev".into(),
        functions: vec![
            FunctionSpec {
                stage_routing: StageRouting::Prefix,
                async_invoke: Default::default(),
                name: "photos-dev-list".into(),
                short_name: "list".into(),
                kind: FunctionKind::Lambda(LambdaSpec {
                    runtime: "python3.12".into(),
                    handler: "photos.list".into(),
                }),
                environment: env(&provider_env),
                memory_size: 256,
                timeout_secs: 20.0,
                concurrency: 1,
                scaling: Scaling::default(),
                events: vec![
                    // `cors: true`: the framework's defaults, the path's methods.
                    Event::Http(HttpEvent {
                        policy: RoutePolicy {
                            cors: Some(CorsPolicy {
                                allow_origins: vec!["*".into()],
                                allow_headers: DEFAULT_CORS_HEADERS.map(String::from).to_vec(),
                                allow_methods: vec!["GET".into(), "OPTIONS".into()],
                                ..CorsPolicy::default()
                            }),
                            authorizer: None,
                        },
                        ..route("GET", "/photos")
                    }),
                    Event::Http(route("GET", "/photos/{id}")),
                ],
            },
            FunctionSpec {
                stage_routing: StageRouting::Prefix,
                async_invoke: Default::default(),
                name: "photos-dev-cleanup".into(),
                short_name: "cleanup".into(),
                kind: FunctionKind::Lambda(LambdaSpec {
                    runtime: "python3.12".into(),
                    handler: "photos.cleanup".into(),
                }),
                environment: env(&cleanup_env),
                memory_size: 256,
                timeout_secs: 60.0,
                concurrency: 1,
                scaling: Scaling::default(),
                events: vec![
                    Event::Schedule {
                        expression: "rate(1 day)".into(),
                    },
                    Event::Sqs(SqsEvent {
                        queue: "queue".into(),
                        batch_size: 10,
                        batch_window_secs: 0,
                        report_batch_item_failures: false,
                        enabled: true,
                        declared: None,
                    }),
                ],
            },
        ],
    };
    assert_eq!(loaded.spec, expected);

    let prod = load_dir(
        dir.path(),
        &LoadOptions {
            stage: Some("prod".into()),
        },
    )
    .expect("load prod");
    assert_eq!(prod.spec.stage, "prod");
    let list = &prod.spec.functions[0];
    assert_eq!(list.name, "photos-prod-list");
    assert_eq!(list.environment["BUCKET"], "photos-prod-uploads");
    assert_eq!(list.environment["STAGE"], "prod");
}

/// (file name, contents, line, column, message)
type ErrorCase = (&'static str, &'static str, u32, u32, &'static str);

#[test]
fn errors_point_at_line_and_column() {
    let cases: &[ErrorCase] = &[
        (
            "rouse.yaml",
            "service: shop\nfunctions:\n  site:\n    web:\n      comand: [\"./server\"]\n",
            5,
            7,
            "unknown field `comand` in web, expected one of: command, port, readiness, rewrite, socketActivation, network (did you mean `command`?)",
        ),
        (
            "rouse.yaml",
            "service: shop\nprovider:\n  runtime: python3.12\nfunctions:\n  thumbs:\n    handler: app.handler\n    timeout: soon\n",
            7,
            14,
            "`timeout` must be a number of seconds, found the string \"soon\"",
        ),
        (
            "rouse.yaml",
            "service: shop\nfunctions:\n  site:\n    web:\n      port: 8080\n    events: [ { http: GET / } ]\n",
            4,
            5,
            "`web` needs a `command`: the server to start, as a list like [\"./server\", \"--port\", \"${PORT}\"] or a string run with `sh -c`",
        ),
        (
            "rouse.yaml",
            "service: shop\nfunctions:\n  site:\n    web:\n      command: ./server\n    handler: app.handler\n",
            6,
            5,
            "function `site` has both `web` and `handler`; a function is either a web server (`web:`) or a lambda handler (`handler:`), not both",
        ),
        (
            "rouse.yaml",
            "service: shop\nfunctions:\n  site:\n    web:\n      command: nginx\n      rewrite:\n        - file: nginx.conf\n          match: 'listen [0-9+;'\n          replace: 'listen ${PORT};'\n",
            8,
            18,
            "`match` is not a valid regular expression: unclosed character class",
        ),
        (
            "rouse.yaml",
            "service: shop\nfunctions:\n  site:\n    web: { command: ./server }\n    events:\n      - http:\n          path: /files/{name}.json\n          method: get\n",
            7,
            17,
            "invalid path `/files/{name}.json`: a parameter must be a whole segment, like `/files/{name}`",
        ),
        (
            "rouse.yaml",
            "service: shop\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  resize:\n    handler: index.handler\n    concurrency: 4\n",
            7,
            18,
            "`concurrency` must be 1 for lambda functions: a lambda instance takes one request at a time (use `scaling.maxInstances` to run more at once)",
        ),
        (
            "rouse.yaml",
            "service: shop\nfunctions:\n  site:\n    web:\n      command: [nginx\n    events: []\n",
            6,
            11,
            "illegal placement of ':' indicator",
        ),
        (
            "serverless.yml",
            "service: shop\nprovider:\n  runtime: nodejs20.x\n  environment:\n    TOKEN: ${env:ROUSE_MANIFEST_TEST_UNSET}\nfunctions:\n  api:\n    handler: index.handler\n",
            5,
            12,
            "cannot resolve `${env:ROUSE_MANIFEST_TEST_UNSET}`: environment variable `ROUSE_MANIFEST_TEST_UNSET` is not set",
        ),
        (
            "serverless.yml",
            "service: shop\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  api:\n    handler: index.handler\n    events:\n      - http:\n          path: users/{id+}/x\n          method: get\n",
            9,
            17,
            "invalid path `users/{id+}/x`: `{id+}` takes the rest of the path, so it must be the last segment",
        ),
    ];
    for (name, text, line, column, message) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), name, text);
        let err = match load_dir(dir.path(), &LoadOptions::default()) {
            Ok(loaded) => panic!("expected an error from {name}:\n{text}\ngot {loaded:?}"),
            Err(e) => e,
        };
        let path = dir.path().join(name).display().to_string();
        assert_eq!(
            (
                err.file.as_str(),
                err.line,
                err.column,
                err.message.as_str()
            ),
            (path.as_str(), Some(*line), Some(*column), *message),
            "for {name}:\n{text}"
        );
        assert_eq!(
            err.to_string(),
            format!("{path}:{line}:{column}: {message}")
        );
    }
}

#[test]
fn find_manifest_prefers_rouse_yaml() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = find_manifest(dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: no manifest found; looked for rouse.yaml, rouse.yml, serverless.yml, serverless.yaml",
            dir.path().display()
        )
    );
    assert_eq!((err.line, err.column), (None, None));

    write(dir.path(), "serverless.yaml", "x");
    assert_eq!(
        find_manifest(dir.path()).unwrap(),
        dir.path().join("serverless.yaml")
    );
    write(dir.path(), "serverless.yml", "x");
    assert_eq!(
        find_manifest(dir.path()).unwrap(),
        dir.path().join("serverless.yml")
    );
    write(dir.path(), "rouse.yml", "x");
    assert_eq!(
        find_manifest(dir.path()).unwrap(),
        dir.path().join("rouse.yml")
    );
    write(dir.path(), "rouse.yaml", ROUSE_YAML);
    assert_eq!(
        find_manifest(dir.path()).unwrap(),
        dir.path().join("rouse.yaml")
    );

    let loaded = load_dir(dir.path(), &LoadOptions::default()).expect("load");
    assert_eq!(
        loaded.warnings,
        [format!(
            "{}: also found rouse.yml, serverless.yml, serverless.yaml, which are ignored",
            dir.path().join("rouse.yaml").display()
        )]
    );
}

#[test]
fn unreadable_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let err = find_manifest(&missing).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: not a directory", missing.display())
    );

    let file = dir.path().join("rouse.yaml");
    let err = load_file(&file, &LoadOptions::default()).unwrap_err();
    assert!(err.message.starts_with("cannot read: "), "{err}");
    assert_eq!(err.line, None);

    std::fs::write(&file, b"service: \xff\n").expect("write");
    let err = load_file(&file, &LoadOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: not valid UTF-8 text", file.display())
    );
}

#[test]
fn parse_str_uses_the_given_name() {
    let err = parse_str(
        "service: [",
        "app/rouse.yaml",
        Flavor::Rouse,
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.file, "app/rouse.yaml");
    assert_eq!(err.line, Some(1));
    let ok = parse_str(
        "service: a\nfunctions:\n  f: { handler: h, runtime: provided }\n",
        "app/rouse.yaml",
        Flavor::Rouse,
        &LoadOptions::default(),
    )
    .expect("load");
    assert_eq!(ok.path, Path::new("app/rouse.yaml"));
}

#[test]
fn serverless_values_from_other_files_older_service_form_and_cloudformation() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "serverless.yml",
        r#"service:
  name: shop
provider:
  name: aws
  runtime: python3.12
  environment: ${file(./env.yml)}
functions:
  api:
    handler: app.handler
    environment:
      SERVICE: ${self:service}
      DB_HOST: ${file(./config.json):db.host}
      MISSING: ${file(./nowhere.json):x, 'fallback'}
      TABLE: { Ref: OrdersTable }
      QUEUE_ARN: { "Fn::GetAtt": [OrdersQueue, Arn] }
      BUCKET: !Ref Uploads
"#,
    );
    write(
        dir.path(),
        "env.yml",
        "LOG_LEVEL: info\nSTAGE: ${sls:stage}\n",
    );
    write(
        dir.path(),
        "config.json",
        r#"{"db": {"host": "db.internal"}}"#,
    );
    let loaded = load_dir(dir.path(), &LoadOptions::default()).expect("load");
    assert_eq!(loaded.spec.service, "shop");
    let api = &loaded.spec.functions[0];
    assert_eq!(api.name, "shop-dev-api");
    assert_eq!(
        api.environment,
        env(&[
            ("BUCKET", ""),
            ("DB_HOST", "db.internal"),
            ("LOG_LEVEL", "info"),
            ("MISSING", "fallback"),
            ("QUEUE_ARN", ""),
            ("SERVICE", "shop"),
            ("STAGE", "dev"),
            ("TABLE", ""),
        ])
    );
    let warnings = loaded.warnings.join("\n");
    for needle in [
        "`TABLE` is a CloudFormation `Ref`",
        "`QUEUE_ARN` is a CloudFormation `Fn::GetAtt`",
    ] {
        assert!(warnings.contains(needle), "{needle} not in:\n{warnings}");
    }
    assert!(warnings.contains("serverless.yml:15:"), "{warnings}");
}

#[test]
fn an_explicit_function_name_replaces_service_stage_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "serverless.yml",
        "service: shop\nprovider:\n  name: aws\n  runtime: python3.12\nfunctions:\n  api:\n    name: ${self:service}-orders\n    handler: app.handler\n  other:\n    handler: app.handler\n",
    );
    let loaded = load_dir(dir.path(), &LoadOptions::default()).expect("load");
    let names: Vec<(&str, &str)> = loaded
        .spec
        .functions
        .iter()
        .map(|f| (f.short_name.as_str(), f.name.as_str()))
        .collect();
    assert_eq!(names, [("api", "shop-orders"), ("other", "shop-dev-other")]);

    write(
        dir.path(),
        "serverless.yml",
        "service: shop\nprovider:\n  name: aws\n  runtime: python3.12\nfunctions:\n  api:\n    name: ../etc/passwd\n    handler: app.handler\n",
    );
    let err = load_dir(dir.path(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("serverless.yml:7:11: invalid function name"),
        "{err}"
    );
}

mod properties {
    use proptest::prelude::*;
    use rouse_manifest::{parse_str, Flavor, LoadOptions};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Any text is a manifest or an error with a position, never a panic.
        #[test]
        fn any_text_loads_or_errors(text in "(service: s\n)?(functions:\n  f:\n    [a-z]{1,8}: [a-z0-9${}:.\\[\\] ]{0,16}\n){0,3}\\PC{0,20}") {
            for flavor in [Flavor::Rouse, Flavor::Serverless] {
                if let Err(err) = parse_str(&text, "m.yml", flavor, &LoadOptions::default()) {
                    prop_assert!(err.to_string().starts_with("m.yml"), "{err}");
                }
            }
        }
    }
}
