//! The event a function consuming an SQS-like queue receives: Lambda's
//! `{"Records": [...]}` with one entry per message of the batch.

use serde_json::{json, Map, Value};

/// One received message, as the queue hands it out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SqsMessage<'a> {
    pub message_id: &'a str,
    pub receipt_handle: &'a str,
    pub body: &'a str,
    /// Message attributes as the SQS API spells them:
    /// `{"name": {"DataType", "StringValue" | "BinaryValue" (base64)}}`.
    pub message_attributes: &'a Value,
    pub md5_of_body: &'a str,
    pub md5_of_message_attributes: Option<&'a str>,
    pub sender_id: &'a str,
    pub sent_at_ms: i64,
    pub receive_count: u32,
    pub first_received_at_ms: i64,
}

/// Where a batch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqsSource<'a> {
    /// `arn:aws:sqs:REGION:ACCOUNT:NAME`.
    pub queue_arn: &'a str,
    pub region: &'a str,
}

/// The event for a batch.
pub fn sqs_event(source: &SqsSource<'_>, messages: &[SqsMessage<'_>]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let mut record = json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": m.receive_count.to_string(),
                    "SentTimestamp": m.sent_at_ms.to_string(),
                    "SenderId": m.sender_id,
                    "ApproximateFirstReceiveTimestamp": m.first_received_at_ms.to_string(),
                },
                "messageAttributes": lambda_attributes(m.message_attributes),
                "md5OfBody": m.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": source.queue_arn,
                "awsRegion": source.region,
            });
            if let (Some(md5), Value::Object(r)) = (m.md5_of_message_attributes, &mut record) {
                r.insert("md5OfMessageAttributes".into(), md5.into());
            }
            record
        })
        .collect();
    json!({ "Records": records })
}

/// SQS API attributes → Lambda's spelling (`dataType`, `stringValue`,
/// `binaryValue`, and the two empty list fields Lambda always sends).
fn lambda_attributes(api: &Value) -> Value {
    let Some(attrs) = api.as_object() else {
        return json!({});
    };
    let mut out = Map::new();
    for (name, attr) in attrs {
        let mut a = Map::new();
        if let Some(s) = attr.get("StringValue").and_then(Value::as_str) {
            a.insert("stringValue".into(), s.into());
        }
        if let Some(b) = attr.get("BinaryValue").and_then(Value::as_str) {
            a.insert("binaryValue".into(), b.into());
        }
        a.insert("stringListValues".into(), json!([]));
        a.insert("binaryListValues".into(), json!([]));
        let data_type = attr.get("DataType").cloned().unwrap_or(Value::Null);
        a.insert("dataType".into(), data_type);
        out.insert(name.clone(), Value::Object(a));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Value {
        let attrs = json!({
            "trace": {"DataType": "String", "StringValue": "abc"},
            "blob": {"DataType": "Binary", "BinaryValue": "AP8="},
        });
        let none = json!({});
        sqs_event(
            &SqsSource {
                queue_arn: "arn:aws:sqs:us-east-1:000000000000:orders",
                region: "us-east-1",
            },
            &[
                SqsMessage {
                    message_id: "059f36b4-87a3-44ab-83d2-661975830a7d",
                    receipt_handle: "r1.059f36b4-87a3-44ab-83d2-661975830a7d.1",
                    body: "test",
                    message_attributes: &attrs,
                    md5_of_body: "098f6bcd4621d373cade4e832627b4f6",
                    md5_of_message_attributes: Some("4f4e0d4c4d1f2b7e3fa6a5e9c5d3b2a1"),
                    sender_id: "000000000000",
                    sent_at_ms: 1_545_082_649_183,
                    receive_count: 1,
                    first_received_at_ms: 1_545_082_649_185,
                },
                SqsMessage {
                    message_id: "2e1424d4-f796-459a-8184-9c92662be6da",
                    receipt_handle: "r1.2e1424d4-f796-459a-8184-9c92662be6da.3",
                    body: "{\"n\": 2}",
                    message_attributes: &none,
                    md5_of_body: "aa3a8d4e2ab3a09d8e5e4bf0b1b6a4a0",
                    md5_of_message_attributes: None,
                    sender_id: "000000000000",
                    sent_at_ms: 1_545_082_650_636,
                    receive_count: 3,
                    first_received_at_ms: 1_545_082_650_649,
                },
            ],
        )
    }

    #[test]
    fn a_batch_has_lambdas_sqs_record_shape() {
        let want: Value =
            serde_json::from_str(include_str!("../tests/fixtures/sqs-event.json")).unwrap();
        assert_eq!(batch(), want);
    }

    #[test]
    fn the_event_deserializes_into_the_official_type() {
        let event: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_value(batch()).unwrap();
        assert_eq!(event.records.len(), 2);
        let first = &event.records[0];
        assert_eq!(first.body.as_deref(), Some("test"));
        assert_eq!(first.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(
            first.event_source_arn.as_deref(),
            Some("arn:aws:sqs:us-east-1:000000000000:orders")
        );
        assert_eq!(first.attributes["ApproximateReceiveCount"], "1");
        assert_eq!(first.attributes["SentTimestamp"], "1545082649183");
        let trace = &first.message_attributes["trace"];
        assert_eq!(trace.string_value.as_deref(), Some("abc"));
        assert_eq!(trace.data_type.as_deref(), Some("String"));
        assert_eq!(
            first.message_attributes["blob"]
                .binary_value
                .as_ref()
                .map(|b| b.0.clone()),
            Some(vec![0u8, 0xff])
        );
        assert_eq!(event.records[1].attributes["ApproximateReceiveCount"], "3");
    }
}
