//! `stream:` events through the whole pipeline, in both flavors.

use super::*;

fn load(flavor: Flavor, src: &str) -> Result<Loaded, ManifestError> {
    let file = match flavor {
        Flavor::Rouse => "rouse.yaml",
        Flavor::Serverless => "serverless.yml",
    };
    parse_with_env(src, file, flavor, &LoadOptions::default(), &|_| None)
}

fn manifest(event: &str) -> String {
    format!(
        "service: s\nprovider: {{ runtime: python3.12 }}\nfunctions:\n  f:\n    handler: h.main\n    events:\n      - stream: {event}\n  failures: {{ handler: h.fail }}\n"
    )
}

fn stream_of(loaded: &Loaded) -> StreamEvent {
    match &loaded.spec.functions[0].events[..] {
        [Event::Stream(s)] => s.clone(),
        other => panic!("expected one stream event, got {other:?}"),
    }
}

fn defaults(stream: &str) -> StreamEvent {
    StreamEvent {
        stream: stream.into(),
        batch_size: 100,
        batch_window_secs: 0,
        starting_position: StartingPosition::TrimHorizon,
        maximum_retry_attempts: DEFAULT_STREAM_RETRY_ATTEMPTS,
        maximum_record_age_secs: None,
        bisect_batch_on_function_error: false,
        report_batch_item_failures: false,
        on_failure: None,
        enabled: true,
    }
}

#[test]
fn stream_events_read_lambdas_settings() {
    let full = StreamEvent {
        batch_size: 10,
        batch_window_secs: 2,
        starting_position: StartingPosition::Latest,
        maximum_retry_attempts: 1,
        maximum_record_age_secs: Some(60),
        bisect_batch_on_function_error: true,
        report_batch_item_failures: true,
        on_failure: Some(Destination::Function {
            name: "s-dev-failures".into(),
        }),
        enabled: false,
        ..defaults("orders")
    };
    let cases = [
        (
            Flavor::Serverless,
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders",
            defaults("orders"),
        ),
        (Flavor::Rouse, "orders", defaults("orders")),
        (
            Flavor::Serverless,
            "{ type: kinesis, arn: 'arn:aws:kinesis:eu-west-1:1:stream/a.b', startingPosition: AT_TIMESTAMP, startingPositionTimestamp: 1700000000 }",
            StreamEvent {
                starting_position: StartingPosition::AtTimestamp {
                    at_ms: 1_700_000_000_000,
                },
                ..defaults("a.b")
            },
        ),
        (
            Flavor::Rouse,
            "{ arn: orders, batchSize: 10, batchWindow: 2, startingPosition: LATEST, maximumRetryAttempts: 1, maximumRecordAgeInSeconds: 60, bisectBatchOnFunctionError: true, functionResponseType: ReportBatchItemFailures, destinations: { onFailure: failures }, enabled: false }",
            full,
        ),
    ];
    for (flavor, event, want) in cases {
        let src = manifest(event);
        let loaded = load(flavor, &src).unwrap_or_else(|e| panic!("{e}\n{src}"));
        assert_eq!(stream_of(&loaded), want, "{event}");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }
}

#[test]
fn bad_stream_events_are_reported_where_they_are() {
    let cases = [
        (
            Flavor::Rouse,
            "{ batchSize: 5 }",
            "rouse.yaml:7:17: stream event needs `arn`",
        ),
        (
            Flavor::Rouse,
            "{ arn: orders, batchSize: 0 }",
            "rouse.yaml:7:43: `batchSize` must be between 1 and 10000, found 0",
        ),
        (
            Flavor::Rouse,
            "{ arn: orders, startingPosition: EARLIEST }",
            "rouse.yaml:7:50: unknown `startingPosition` `EARLIEST`",
        ),
        (
            Flavor::Rouse,
            "{ arn: orders, startingPosition: AT_TIMESTAMP }",
            "rouse.yaml:7:17: `startingPosition: AT_TIMESTAMP` needs `startingPositionTimestamp`",
        ),
        (
            Flavor::Rouse,
            "'bad name'",
            "rouse.yaml:7:17: invalid stream name `bad name`",
        ),
        (
            Flavor::Rouse,
            "{ arn: orders, functionResponseType: All }",
            "rouse.yaml:7:54: `functionResponseType` must be `ReportBatchItemFailures`",
        ),
        (
            Flavor::Rouse,
            "{ arn: orders, destinations: { onFailure: dlq } }",
            "a stream mapping's `onFailure` must name a function",
        ),
        (
            Flavor::Rouse,
            "{ arn: orders, batchWindow: 301 }",
            "`batchWindow` must be between 0 and 300, found 301",
        ),
        (
            Flavor::Rouse,
            "{ arn: orders, parallelizationFactor: 2 }",
            "unknown field `parallelizationFactor` in stream event",
        ),
    ];
    for (flavor, event, want) in cases {
        let src = manifest(event);
        let err = load(flavor, &src).unwrap_err().to_string();
        assert!(err.contains(want), "{event}:\n  got  {err}\n  want {want}");
    }
}

#[test]
fn other_stream_sources_are_ignored_in_serverless_yml_with_a_warning() {
    for event in [
        "{ type: dynamodb, arn: 'arn:aws:dynamodb:us-east-1:1:table/t/stream/2024' }",
        "'arn:aws:dynamodb:us-east-1:1:table/t/stream/2024'",
    ] {
        let src = manifest(event);
        let loaded = load(Flavor::Serverless, &src).unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.spec.functions[0].events.is_empty());
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(
            loaded.warnings[0].contains("ignored"),
            "{:?}",
            loaded.warnings
        );
    }
}

#[test]
fn web_functions_cannot_consume_streams() {
    let src = "service: s\nfunctions:\n  w:\n    web: { command: ./server }\n    events: [ { stream: orders } ]\n";
    let err = load(Flavor::Rouse, src).unwrap_err().to_string();
    assert!(
        err.contains("stream events need a lambda function"),
        "{err}"
    );
}
