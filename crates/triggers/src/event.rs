//! The payload a scheduled invocation delivers: EventBridge's
//! "Scheduled Event", so handlers written for AWS read it unchanged.

use serde_json::{json, Value};

use crate::calendar::format_utc;

/// Account used when the function ARN does not carry one; the same
/// placeholder rouse's Lambda environment reports.
pub const DEFAULT_ACCOUNT: &str = "000000000000";
/// Region used when the function ARN does not carry one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Builds the event EventBridge sends for a schedule rule:
///
/// ```json
/// { "version": "0", "id": "…", "detail-type": "Scheduled Event",
///   "source": "aws.events", "account": "123456789012",
///   "time": "2015-10-08T16:53:06Z", "region": "us-east-1",
///   "resources": ["arn:aws:events:us-east-1:123456789012:rule/my-rule"],
///   "detail": {} }
/// ```
///
/// `time` is the scheduled fire time in unix seconds; `id` should be unique
/// per event (a UUID, as AWS uses). Partition, region and account are taken
/// from `function_arn` (`arn:aws:lambda:<region>:<account>:function:<name>`),
/// so the rule ARN sits beside the function it targets; parts the ARN lacks
/// fall back to `aws`, [`DEFAULT_REGION`] and [`DEFAULT_ACCOUNT`].
pub fn scheduled_event(rule_name: &str, function_arn: &str, time: i64, id: &str) -> Value {
    // arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]
    let fields: Vec<&str> = function_arn.split(':').collect();
    let is_arn = fields.first() == Some(&"arn");
    let field = |index: usize, default: &'static str| {
        fields
            .get(index)
            .copied()
            .filter(|field| is_arn && !field.is_empty())
            .unwrap_or(default)
    };
    let (partition, region, account) = (
        field(1, "aws"),
        field(3, DEFAULT_REGION),
        field(4, DEFAULT_ACCOUNT),
    );
    json!({
        "version": "0",
        "id": id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": format_utc(time),
        "region": region,
        "resources": [format!("arn:{partition}:events:{region}:{account}:rule/{rule_name}")],
        "detail": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_aws_documentation_example() {
        // The sample event from the EventBridge user guide ("Amazon
        // EventBridge events" → scheduled events), byte for byte in content.
        let documented: Value = serde_json::from_str(
            r#"{
              "version": "0",
              "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
              "detail-type": "Scheduled Event",
              "source": "aws.events",
              "account": "123456789012",
              "time": "2015-10-08T16:53:06Z",
              "region": "us-east-1",
              "resources": [
                "arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule"
              ],
              "detail": {}
            }"#,
        )
        .expect("fixture parses");
        let built = scheduled_event(
            "my-scheduled-rule",
            "arn:aws:lambda:us-east-1:123456789012:function:my-function",
            1_444_323_186,
            "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        );
        assert_eq!(built, documented);
    }

    #[test]
    fn region_and_account_come_from_the_function_arn() {
        let cases = [
            (
                "arn:aws:lambda:eu-west-1:111122223333:function:fn",
                "eu-west-1",
                "111122223333",
                "arn:aws:events:eu-west-1:111122223333:rule/r",
            ),
            (
                "arn:aws-cn:lambda:cn-north-1:444455556666:function:fn:live",
                "cn-north-1",
                "444455556666",
                "arn:aws-cn:events:cn-north-1:444455556666:rule/r",
            ),
            (
                "arn:aws:lambda:::function:fn",
                DEFAULT_REGION,
                DEFAULT_ACCOUNT,
                "arn:aws:events:us-east-1:000000000000:rule/r",
            ),
            (
                "not-an-arn",
                DEFAULT_REGION,
                DEFAULT_ACCOUNT,
                "arn:aws:events:us-east-1:000000000000:rule/r",
            ),
            (
                "",
                DEFAULT_REGION,
                DEFAULT_ACCOUNT,
                "arn:aws:events:us-east-1:000000000000:rule/r",
            ),
        ];
        for (function_arn, region, account, rule_arn) in cases {
            let event = scheduled_event("r", function_arn, 0, "id");
            assert_eq!(event["region"], region, "{function_arn}");
            assert_eq!(event["account"], account, "{function_arn}");
            assert_eq!(event["resources"][0], rule_arn, "{function_arn}");
            assert_eq!(event["time"], "1970-01-01T00:00:00Z");
        }
    }
}
