//! The event a function consuming a Kinesis stream receives: Lambda's
//! `{"Records": [...]}` with one entry per record of the batch, in order.

use base64::Engine;
use serde_json::{json, Value};

/// One record of a batch, as the stream keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KinesisRecord<'a> {
    pub partition_key: &'a str,
    /// The 56-digit sequence number, as producers were told.
    pub sequence_number: &'a str,
    pub data: &'a [u8],
    pub arrived_at_ms: i64,
}

/// Where a batch comes from and who reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KinesisSource<'a> {
    /// `shardId-000000000000`.
    pub shard_id: &'a str,
    /// `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`.
    pub stream_arn: &'a str,
    pub region: &'a str,
    /// The role Lambda would assume to read the stream; rouse names the
    /// function's own ARN-shaped identity.
    pub invoke_identity_arn: &'a str,
}

/// The event for a batch.
pub fn kinesis_event(source: &KinesisSource<'_>, records: &[KinesisRecord<'_>]) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": b64.encode(r.data),
                    "approximateArrivalTimestamp": epoch_seconds(r.arrived_at_ms),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{}:{}", source.shard_id, r.sequence_number),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": source.invoke_identity_arn,
                "awsRegion": source.region,
                "eventSourceARN": source.stream_arn,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// Milliseconds as Kinesis's fractional epoch seconds (`1700000000.123`).
pub fn epoch_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: KinesisSource<'static> = KinesisSource {
        shard_id: "shardId-000000000000",
        stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders",
        region: "us-east-1",
        invoke_identity_arn: "arn:aws:iam::000000000000:role/rouse",
    };

    fn batch() -> Value {
        let seq1 = "49000000000000000000000000000000000000000000000000000001";
        let seq2 = "49000000000000000000000000000000000000000000000000000002";
        kinesis_event(
            &SOURCE,
            &[
                KinesisRecord {
                    partition_key: "user-1",
                    sequence_number: seq1,
                    data: b"Hello, this is a test.",
                    arrived_at_ms: 1_428_537_600_123,
                },
                KinesisRecord {
                    partition_key: "user-2",
                    sequence_number: seq2,
                    data: b"\x00\xff",
                    arrived_at_ms: 1_428_537_601_000,
                },
            ],
        )
    }

    #[test]
    fn a_batch_has_lambdas_kinesis_record_shape() {
        let want: Value =
            serde_json::from_str(include_str!("../tests/fixtures/kinesis-event.json")).unwrap();
        assert_eq!(batch(), want);
    }

    #[test]
    fn the_event_deserializes_into_the_official_type() {
        let event: aws_lambda_events::event::kinesis::KinesisEvent =
            serde_json::from_value(batch()).unwrap();
        assert_eq!(event.records.len(), 2);
        let first = &event.records[0];
        assert_eq!(first.kinesis.partition_key, "user-1");
        assert_eq!(first.kinesis.data.0, b"Hello, this is a test.");
        assert_eq!(event.records[1].kinesis.data.0, b"\x00\xff");
        assert_eq!(first.event_source.as_deref(), Some("aws:kinesis"));
        assert_eq!(
            first.event_id.as_deref(),
            Some("shardId-000000000000:49000000000000000000000000000000000000000000000000000001")
        );
        assert_eq!(
            first
                .kinesis
                .approximate_arrival_timestamp
                .0
                .timestamp_millis(),
            1_428_537_600_123
        );
    }
}
