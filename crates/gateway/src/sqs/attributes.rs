//! Queue attributes as SQS spells them (a map of strings) ⇄ the store's
//! [`QueueAttributes`], with SQS's ranges. Pure.

use std::collections::BTreeMap;

use rouse_store::queues::{self as q, QueueAttributes, QueueCounts, QueueInfo, Redrive};
use serde_json::{json, Value};

use super::errors::{self, SqsError};

/// What a `.fifo` queue or `FifoQueue: true` gets.
pub(crate) const NO_FIFO: &str =
    "FIFO queues are not supported by rouse yet; use a standard queue (a name without .fifo)";

/// `arn:aws:sqs:REGION:ACCOUNT:NAME`.
pub(crate) fn queue_arn(name: &str) -> String {
    format!(
        "arn:aws:sqs:{}:{}:{name}",
        rouse_pool::lambda::REGION,
        rouse_pool::lambda::ACCOUNT_ID
    )
}

fn number(name: &str, text: &str, min: u32, max: u32) -> Result<u32, SqsError> {
    match text.trim().parse::<u32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(errors::attribute_value(
            name,
            &format!("must be a whole number from {min} to {max}, found {text:?}."),
        )),
    }
}

/// `{"deadLetterTargetArn": "arn:aws:sqs:…:NAME", "maxReceiveCount": N}` as
/// a JSON string (the count may be a number or a string); `""` removes it.
fn redrive(text: &str) -> Result<Option<Redrive>, SqsError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let bad = |reason: &str| errors::attribute_value("RedrivePolicy", reason);
    let doc: Value = serde_json::from_str(text).map_err(|_| {
        bad("it must be a JSON object with deadLetterTargetArn and maxReceiveCount.")
    })?;
    let arn = doc
        .get("deadLetterTargetArn")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("deadLetterTargetArn is required."))?;
    let name =
        arn_queue(arn).ok_or_else(|| bad("deadLetterTargetArn must be an SQS queue ARN."))?;
    let count = match doc.get("maxReceiveCount") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .and_then(|n| u32::try_from(n).ok())
    .filter(|n| (1..=q::MAX_RECEIVE_COUNT).contains(n))
    .ok_or_else(|| bad("maxReceiveCount must be a whole number from 1 to 1000."))?;
    Ok(Some(Redrive {
        dead_letter_queue: name.to_string(),
        max_receive_count: count,
    }))
}

/// The queue name of an SQS ARN.
pub(crate) fn arn_queue(arn: &str) -> Option<&str> {
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    match fields.as_slice() {
        ["arn", _, "sqs", _, _, name] if q::valid_queue_name(name) => Some(name),
        _ => None,
    }
}

/// `base` with the attributes of a CreateQueue or SetQueueAttributes call
/// applied. Unknown names and values out of SQS's ranges are errors.
pub(crate) fn apply(
    base: &QueueAttributes,
    given: &BTreeMap<String, String>,
) -> Result<QueueAttributes, SqsError> {
    let mut a = base.clone();
    for (name, value) in given {
        match name.as_str() {
            "VisibilityTimeout" => {
                a.visibility_timeout_secs = number(name, value, 0, q::MAX_VISIBILITY_TIMEOUT)?
            }
            "MessageRetentionPeriod" => {
                a.retention_secs = number(name, value, q::MIN_RETENTION, q::MAX_RETENTION)?
            }
            "DelaySeconds" => a.delay_secs = number(name, value, 0, q::MAX_DELAY)?,
            "ReceiveMessageWaitTimeSeconds" => {
                a.receive_wait_secs = number(name, value, 0, q::MAX_RECEIVE_WAIT)?
            }
            "MaximumMessageSize" => {
                a.maximum_message_size =
                    number(name, value, q::MIN_MESSAGE_SIZE, q::MAX_MESSAGE_SIZE)?
            }
            "RedrivePolicy" => a.redrive = redrive(value)?,
            "FifoQueue"
            | "ContentBasedDeduplication"
            | "DeduplicationScope"
            | "FifoThroughputLimit"
                if value.trim() != "false" =>
            {
                return Err(errors::unsupported(NO_FIFO))
            }
            "FifoQueue" | "ContentBasedDeduplication" => {}
            _ => return Err(errors::attribute_name(name)),
        }
    }
    Ok(a)
}

/// The attributes GetQueueAttributes can name.
const ALL: &[&str] = &[
    "QueueArn",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "VisibilityTimeout",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
];

/// GetQueueAttributes' answer for `names` (`All` for every one); a queue
/// without a redrive policy has no `RedrivePolicy`.
pub(crate) fn render(
    info: &QueueInfo,
    counts: &QueueCounts,
    names: &[String],
) -> Result<BTreeMap<String, String>, SqsError> {
    let wanted: Vec<&str> = if names.iter().any(|n| n == "All") {
        ALL.to_vec()
    } else {
        for n in names {
            if !ALL.contains(&n.as_str()) && !matches!(n.as_str(), "FifoQueue" | "Policy") {
                return Err(errors::attribute_name(n));
            }
        }
        names.iter().map(String::as_str).collect()
    };
    let a = &info.attributes;
    let mut out = BTreeMap::new();
    for name in wanted {
        let value = match name {
            "QueueArn" => queue_arn(&info.name),
            "ApproximateNumberOfMessages" => counts.visible.to_string(),
            "ApproximateNumberOfMessagesNotVisible" => counts.in_flight.to_string(),
            "ApproximateNumberOfMessagesDelayed" => counts.delayed.to_string(),
            "CreatedTimestamp" => (info.created_at_ms / 1000).to_string(),
            "LastModifiedTimestamp" => (info.updated_at_ms / 1000).to_string(),
            "VisibilityTimeout" => a.visibility_timeout_secs.to_string(),
            "MaximumMessageSize" => a.maximum_message_size.to_string(),
            "MessageRetentionPeriod" => a.retention_secs.to_string(),
            "DelaySeconds" => a.delay_secs.to_string(),
            "ReceiveMessageWaitTimeSeconds" => a.receive_wait_secs.to_string(),
            "RedrivePolicy" => match &a.redrive {
                Some(r) => json!({
                    "deadLetterTargetArn": queue_arn(&r.dead_letter_queue),
                    "maxReceiveCount": r.max_receive_count,
                })
                .to_string(),
                None => continue,
            },
            // Asked for by name, never set here.
            _ => continue,
        };
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn attributes_apply_within_sqs_ranges() {
        let a = apply(
            &QueueAttributes::default(),
            &given(&[
                ("VisibilityTimeout", "5"),
                ("DelaySeconds", "900"),
                (
                    "RedrivePolicy",
                    r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"3"}"#,
                ),
            ]),
        )
        .unwrap();
        assert_eq!(a.visibility_timeout_secs, 5);
        assert_eq!(a.delay_secs, 900);
        assert_eq!(
            a.redrive,
            Some(Redrive {
                dead_letter_queue: "dlq".into(),
                max_receive_count: 3
            })
        );
        let cleared = apply(&a, &given(&[("RedrivePolicy", "")])).unwrap();
        assert_eq!(cleared.redrive, None);

        for (name, value, shape) in [
            ("VisibilityTimeout", "43201", "InvalidAttributeValue"),
            ("DelaySeconds", "-1", "InvalidAttributeValue"),
            ("MessageRetentionPeriod", "59", "InvalidAttributeValue"),
            ("RedrivePolicy", "{}", "InvalidAttributeValue"),
            (
                "RedrivePolicy",
                r#"{"deadLetterTargetArn":"x","maxReceiveCount":1}"#,
                "InvalidAttributeValue",
            ),
            (
                "RedrivePolicy",
                r#"{"deadLetterTargetArn":"arn:aws:sqs:r:1:d","maxReceiveCount":0}"#,
                "InvalidAttributeValue",
            ),
            ("Colour", "blue", "InvalidAttributeName"),
            ("FifoQueue", "true", "UnsupportedOperation"),
        ] {
            let err = apply(&QueueAttributes::default(), &given(&[(name, value)])).unwrap_err();
            assert_eq!(err.shape, shape, "{name}={value}");
        }
        assert!(apply(
            &QueueAttributes::default(),
            &given(&[("FifoQueue", "false")])
        )
        .is_ok());
    }

    #[test]
    fn rendered_attributes_are_sqs_strings() {
        let info = QueueInfo {
            name: "jobs".into(),
            attributes: QueueAttributes {
                redrive: Some(Redrive {
                    dead_letter_queue: "dlq".into(),
                    max_receive_count: 2,
                }),
                ..QueueAttributes::default()
            },
            created_at_ms: 1_700_000_000_500,
            updated_at_ms: 1_700_000_001_000,
        };
        let counts = QueueCounts {
            visible: 3,
            in_flight: 1,
            delayed: 2,
        };
        let all = render(&info, &counts, &["All".into()]).unwrap();
        assert_eq!(all["QueueArn"], "arn:aws:sqs:us-east-1:000000000000:jobs");
        assert_eq!(all["ApproximateNumberOfMessages"], "3");
        assert_eq!(all["ApproximateNumberOfMessagesNotVisible"], "1");
        assert_eq!(all["ApproximateNumberOfMessagesDelayed"], "2");
        assert_eq!(all["VisibilityTimeout"], "30");
        assert_eq!(all["MessageRetentionPeriod"], "345600");
        assert_eq!(all["CreatedTimestamp"], "1700000000");
        let policy: Value = serde_json::from_str(&all["RedrivePolicy"]).unwrap();
        assert_eq!(policy["maxReceiveCount"], 2);
        let one = render(&info, &counts, &["DelaySeconds".into()]).unwrap();
        assert_eq!(one.len(), 1);
        assert!(render(&info, &counts, &["Nope".into()]).is_err());
    }
}
