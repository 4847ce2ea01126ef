//! What a stream mapping's on-failure destination receives: Lambda's
//! record with `KinesisBatchInfo`, which points at the records (shard and
//! sequence range) rather than carrying them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

pub(super) struct Failure<'a> {
    pub request_id: &'a str,
    pub function_arn: &'a str,
    /// `RetryAttemptsExhausted` or `RecordAgeExceeded`.
    pub condition: &'a str,
    pub invoke_count: u32,
    /// Whether the last attempt ran the function (and it failed).
    pub function_error: bool,
    pub shard_id: &'a str,
    pub stream_arn: &'a str,
    pub first_seq: &'a str,
    pub last_seq: &'a str,
    pub first_arrival_ms: i64,
    pub last_arrival_ms: i64,
    pub batch_size: usize,
    pub at: SystemTime,
}

fn rfc3339(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

pub(super) fn failure_record(f: &Failure<'_>) -> Value {
    let mut response = json!({ "statusCode": 200, "executedVersion": "$LATEST" });
    if f.function_error {
        response["functionError"] = json!("Unhandled");
    }
    json!({
        "requestContext": {
            "requestId": f.request_id,
            "functionArn": f.function_arn,
            "condition": f.condition,
            "approximateInvokeCount": f.invoke_count,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": humantime::format_rfc3339_millis(f.at).to_string(),
        "KinesisBatchInfo": {
            "shardId": f.shard_id,
            "startSequenceNumber": f.first_seq,
            "endSequenceNumber": f.last_seq,
            "approximateArrivalOfFirstRecord": rfc3339(f.first_arrival_ms),
            "approximateArrivalOfLastRecord": rfc3339(f.last_arrival_ms),
            "batchSize": f.batch_size,
            "streamArn": f.stream_arn,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_has_lambdas_shape() {
        let record = failure_record(&Failure {
            request_id: "c9b8fa9f-5a7f-4e2f-9f4e-1d2c3b4a5f6e",
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f",
            condition: "RetryAttemptsExhausted",
            invoke_count: 3,
            function_error: true,
            shard_id: "shardId-000000000000",
            stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/s",
            first_seq: "1",
            last_seq: "2",
            first_arrival_ms: 1_573_755_365_000,
            last_arrival_ms: 1_573_755_366_500,
            batch_size: 2,
            at: UNIX_EPOCH + Duration::from_millis(1_573_755_400_021),
        });
        let want: Value = serde_json::from_str(
            r#"{
              "requestContext": {
                "requestId": "c9b8fa9f-5a7f-4e2f-9f4e-1d2c3b4a5f6e",
                "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:f",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": 3
              },
              "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
              "version": "1.0",
              "timestamp": "2019-11-14T18:16:40.021Z",
              "KinesisBatchInfo": {
                "shardId": "shardId-000000000000",
                "startSequenceNumber": "1",
                "endSequenceNumber": "2",
                "approximateArrivalOfFirstRecord": "2019-11-14T18:16:05.000Z",
                "approximateArrivalOfLastRecord": "2019-11-14T18:16:06.500Z",
                "batchSize": 2,
                "streamArn": "arn:aws:kinesis:us-east-1:000000000000:stream/s"
              }
            }"#,
        )
        .unwrap();
        assert_eq!(record, want);
    }
}
