//! The record a destination receives when an async invocation ends: Lambda's
//! shape (`version`, `timestamp`, `requestContext`, `requestPayload`,
//! `responseContext`, `responsePayload`), so handlers written for Lambda
//! destinations read it unchanged.

use std::time::SystemTime;

use serde_json::{json, Value};

/// How the last attempt answered.
pub(super) struct Response<'a> {
    /// 200 when the function ran (even if it failed), else the status the
    /// Invoke API would have given (429 throttled, 502 …).
    pub status: u16,
    /// `Unhandled` for a function error.
    pub function_error: Option<&'a str>,
    pub payload: &'a [u8],
}

pub(super) struct Outcome<'a> {
    pub request_id: &'a str,
    /// The function's ARN without a qualifier.
    pub function_arn: &'a str,
    pub version: Option<u32>,
    /// `Success`, `RetriesExhausted` or `EventAgeExceeded`.
    pub condition: &'a str,
    pub invoke_count: u32,
    pub request_payload: &'a [u8],
    pub response: Option<Response<'a>>,
    pub at: SystemTime,
}

pub(super) fn destination_record(outcome: &Outcome<'_>) -> Value {
    let executed = outcome
        .version
        .map_or_else(|| "$LATEST".to_string(), |v| v.to_string());
    let mut record = json!({
        "version": "1.0",
        "timestamp": humantime::format_rfc3339_millis(outcome.at).to_string(),
        "requestContext": {
            "requestId": outcome.request_id,
            "functionArn": format!("{}:{executed}", outcome.function_arn),
            "condition": outcome.condition,
            "approximateInvokeCount": outcome.invoke_count,
        },
        "requestPayload": json_or_text(outcome.request_payload),
    });
    if let Some(response) = &outcome.response {
        let mut context = json!({
            "statusCode": response.status,
            "executedVersion": executed,
        });
        if let Some(error) = response.function_error {
            context["functionError"] = json!(error);
        }
        record["responseContext"] = context;
        record["responsePayload"] = json_or_text(response.payload);
    }
    record
}

/// Payloads are JSON on the way in; a result may be any bytes, which go in
/// as a string rather than being lost.
fn json_or_text(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_573_755_365_568)
    }

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).expect("fixture is JSON")
    }

    #[test]
    fn on_failure_matches_lambdas_record() {
        let record = destination_record(&Outcome {
            request_id: "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:my-function",
            version: None,
            condition: "RetriesExhausted",
            invoke_count: 3,
            request_payload: br#"{"ORDER_IDS":["9e07af03-ce31-4ff3-xmpl-36dce652cb4f"]}"#,
            response: Some(Response {
                status: 200,
                function_error: Some("Unhandled"),
                payload: br#"{"errorMessage":"boom","errorType":"ValueError"}"#,
            }),
            at: at(),
        });
        assert_eq!(record, fixture(include_str!("fixtures/on-failure.json")));
    }

    #[test]
    fn on_success_matches_lambdas_record() {
        let record = destination_record(&Outcome {
            request_id: "c2a6f2ae-7dbb-4d22-8782-d0485c9877e2",
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:my-function",
            version: Some(4),
            condition: "Success",
            invoke_count: 1,
            request_payload: br#"{"Success":true}"#,
            response: Some(Response {
                status: 200,
                function_error: None,
                payload: b"null",
            }),
            at: at(),
        });
        assert_eq!(record, fixture(include_str!("fixtures/on-success.json")));
    }

    #[test]
    fn an_event_never_run_has_no_response_and_text_results_stay_text() {
        let mut outcome = Outcome {
            request_id: "r",
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f",
            version: None,
            condition: "EventAgeExceeded",
            invoke_count: 0,
            request_payload: b"{}",
            response: None,
            at: at(),
        };
        let record = destination_record(&outcome);
        assert!(record.get("responseContext").is_none(), "{record}");
        assert!(record.get("responsePayload").is_none(), "{record}");
        outcome.response = Some(Response {
            status: 200,
            function_error: None,
            payload: b"plain text",
        });
        assert_eq!(
            destination_record(&outcome)["responsePayload"],
            "plain text"
        );
    }
}
