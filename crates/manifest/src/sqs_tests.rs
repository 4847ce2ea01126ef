//! `sqs:` events and `AWS::SQS::Queue` resources through the whole
//! pipeline, in both flavors.

use super::*;

fn load(flavor: Flavor, src: &str) -> Result<Loaded, ManifestError> {
    let file = match flavor {
        Flavor::Rouse => "rouse.yaml",
        Flavor::Serverless => "serverless.yml",
    };
    parse_with_env(src, file, flavor, &LoadOptions::default(), &|_| None)
}

fn manifest(event: &str, rest: &str) -> String {
    format!(
        "service: s\nprovider: {{ runtime: python3.12 }}\nfunctions:\n  f:\n    handler: h.main\n    events:\n      - sqs: {event}\n{rest}"
    )
}

fn sqs_of(loaded: &Loaded) -> SqsEvent {
    match &loaded.spec.functions[0].events[..] {
        [Event::Sqs(s)] => s.clone(),
        other => panic!("expected one sqs event, got {other:?}"),
    }
}

#[test]
fn an_arn_names_a_queue_with_lambdas_defaults() {
    let src = manifest("arn:aws:sqs:us-east-1:000000000000:jobs", "");
    let loaded = load(Flavor::Serverless, &src).unwrap();
    let sqs = sqs_of(&loaded);
    assert_eq!(
        sqs,
        SqsEvent {
            queue: "jobs".into(),
            batch_size: 10,
            batch_window_secs: 0,
            report_batch_item_failures: false,
            enabled: true,
            declared: None,
        }
    );
    // Read and checked, and said to be ignored until queues are polled.
    assert_eq!(
        loaded.warnings,
        ["serverless.yml:7:9: `functions.f.events[0].sqs` is not delivered by rouse yet (queues are not polled); the event is ignored"]
    );
    // rouse.yaml takes a bare name too.
    let loaded = load(
        Flavor::Rouse,
        &manifest("{ queue: jobs, batchSize: 5 }", ""),
    )
    .unwrap();
    assert_eq!(sqs_of(&loaded).queue, "jobs");
    assert_eq!(sqs_of(&loaded).batch_size, 5);
}

#[test]
fn settings_are_read_and_checked() {
    let src = manifest(
        "{ arn: 'arn:aws:sqs:us-east-1:1:jobs', batchSize: 50, maximumBatchingWindow: 2, functionResponseType: ReportBatchItemFailures, enabled: false }",
        "",
    );
    let sqs = sqs_of(&load(Flavor::Serverless, &src).unwrap());
    assert_eq!(sqs.batch_size, 50);
    assert_eq!(sqs.batch_window_secs, 2);
    assert!(sqs.report_batch_item_failures);
    assert!(!sqs.enabled);

    for (event, message) in [
        (
            "{ arn: 'arn:aws:sqs:us-east-1:1:jobs', batchSize: 20 }",
            "needs `maximumBatchingWindow`",
        ),
        (
            "{ arn: 'arn:aws:sqs:us-east-1:1:jobs', batchSize: 0 }",
            "batchSize",
        ),
        (
            "{ arn: 'arn:aws:sqs:us-east-1:1:jobs', functionResponseType: All }",
            "ReportBatchItemFailures",
        ),
        ("{ batchSize: 1 }", "needs `arn`"),
        ("'arn:aws:sqs:us-east-1:1:bad name'", "queue name"),
        (
            "'arn:aws:sqs:us-east-1:1:jobs.fifo'",
            "FIFO queues are not supported",
        ),
    ] {
        let err = load(Flavor::Serverless, &manifest(event, ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{event}: {err}");
        assert!(err.starts_with("serverless.yml:7:"), "{event}: {err}");
    }
    // Not an SQS ARN: ignored with a warning in serverless.yml, an error in rouse.yaml.
    let src = manifest("arn:aws:sns:us-east-1:1:topic", "");
    let loaded = load(Flavor::Serverless, &src).unwrap();
    assert!(loaded.spec.functions[0].events.is_empty());
    assert!(
        loaded.warnings[0].contains("is not an SQS queue ARN"),
        "{:?}",
        loaded.warnings
    );
    assert!(load(Flavor::Rouse, &src).is_err());
}

#[test]
fn get_att_of_a_queue_resource_names_it_with_its_properties() {
    let resources = "resources:
  Resources:
    JobsQueue:
      Type: AWS::SQS::Queue
      Properties:
        QueueName: ${self:service}-jobs
        VisibilityTimeout: 5
        RedrivePolicy:
          deadLetterTargetArn: !GetAtt JobsDlq.Arn
          maxReceiveCount: 3
    JobsDlq:
      Type: AWS::SQS::Queue
    Table:
      Type: AWS::DynamoDB::Table
      Properties: { TableName: '${ssm:/unknown}' }
";
    let src = manifest("{ arn: { 'Fn::GetAtt': [JobsQueue, Arn] } }", resources);
    let loaded = load(Flavor::Serverless, &src).unwrap();
    let sqs = sqs_of(&loaded);
    assert_eq!(sqs.queue, "s-jobs");
    assert_eq!(
        sqs.declared,
        Some(QueueDeclaration {
            visibility_timeout_secs: Some(5),
            message_retention_secs: None,
            delay_secs: None,
            dead_letter_queue: Some("JobsDlq".into()),
            max_receive_count: Some(3),
        })
    );
    assert_eq!(
        loaded.warnings,
        [
            "serverless.yml:7:9: `functions.f.events[0].sqs` is not delivered by rouse yet (queues are not polled); the event is ignored",
            "serverless.yml:21:7: `resources.Resources.Table` is not supported by rouse and is ignored (of resources, only `AWS::SQS::Queue` is made, as a rouse queue)"
        ]
    );
    // The short form, and an ARN of a declared queue, find it too.
    let short = manifest("!GetAtt JobsQueue.Arn", resources);
    assert_eq!(
        sqs_of(&load(Flavor::Serverless, &short).unwrap()).queue,
        "s-jobs"
    );
    let by_arn = manifest("arn:aws:sqs:us-east-1:1:s-jobs", resources);
    assert_eq!(
        sqs_of(&load(Flavor::Serverless, &by_arn).unwrap())
            .declared
            .map(|d| d.max_receive_count),
        Some(Some(3))
    );
    // A GetAtt of something else is ignored with a warning.
    let other = manifest("!GetAtt Table.Arn", resources);
    let loaded = load(Flavor::Serverless, &other).unwrap();
    assert!(loaded.spec.functions[0].events.is_empty());
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("`Table`, which is not an `AWS::SQS::Queue`")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn web_functions_cannot_consume_queues() {
    let src = "service: s\nfunctions:\n  w:\n    web: { command: ./server }\n    events: [ { sqs: jobs } ]\n";
    let err = load(Flavor::Rouse, src).unwrap_err().to_string();
    assert!(err.contains("sqs events need a lambda function"), "{err}");
}
