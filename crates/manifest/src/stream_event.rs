//! `stream:` events: a function consuming a rouse stream, with Lambda's
//! Kinesis event source mapping settings. serverless.yml names the stream
//! by ARN (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME` is the rouse stream
//! NAME); rouse.yaml may also give the bare name.

use crate::ctx::{Ctx, Section};
use crate::error::ManifestError;
use crate::yaml::{Node, Value};
use crate::{
    Flavor, StartingPosition, StreamEvent, DEFAULT_STREAM_BATCH_SIZE, DEFAULT_STREAM_RETRY_ATTEMPTS,
};

const KEYS: &[&str] = &[
    "arn",
    "type",
    "batchSize",
    "batchWindow",
    "startingPosition",
    "startingPositionTimestamp",
    "maximumRetryAttempts",
    "maximumRecordAgeInSeconds",
    "bisectBatchOnFunctionError",
    "functionResponseType",
    "destinations",
    "enabled",
];
const POSITIONS: &[&str] = &["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"];

/// The mapping, or `None` for one rouse ignores (a DynamoDB stream in
/// serverless.yml, with a warning).
pub(crate) fn read(
    ctx: &Ctx<'_>,
    node: &Node,
    path: &str,
) -> Result<Option<StreamEvent>, ManifestError> {
    let node = ctx.val(node)?;
    if let Value::Str(_) = &node.value {
        let text = ctx.non_empty(&node, "stream")?;
        return Ok(stream_name(ctx, &node, &text)?.map(defaults));
    }
    let section = Section {
        name: "stream event",
        path,
    };
    let fields = ctx.fields(&node, "stream", section, KEYS)?;
    if let Some(kind) = fields.get("type") {
        let kind_text = ctx.string(kind, "type")?;
        if kind_text != "kinesis" {
            let message = format!(
                "`{path}.type: {kind_text}`: rouse streams are Kinesis-like (`type: kinesis`)"
            );
            return match ctx.flavor {
                Flavor::Serverless => {
                    ctx.warn(kind.loc, format!("{message}; the event is ignored"));
                    Ok(None)
                }
                Flavor::Rouse => Err(ctx.error(kind.loc, message)),
            };
        }
    }
    let arn = fields.get("arn").ok_or_else(|| {
        ctx.error(
            node.loc,
            "stream event needs `arn`, like `arn: arn:aws:kinesis:us-east-1:000000000000:stream/orders`",
        )
    })?;
    let text = ctx.non_empty(arn, "arn")?;
    let Some(name) = stream_name(ctx, arn, &text)? else {
        return Ok(None);
    };
    let mut event = defaults(name);
    if let Some(n) = fields.get("batchSize") {
        event.batch_size = small(ctx.whole(n, "batchSize", 1..=10_000)?);
    }
    if let Some(n) = fields.get("batchWindow") {
        event.batch_window_secs = small(ctx.whole(n, "batchWindow", 0..=300)?);
    }
    if let Some(n) = fields.get("maximumRetryAttempts") {
        event.maximum_retry_attempts = small(ctx.whole(n, "maximumRetryAttempts", 0..=10_000)?);
    }
    if let Some(n) = fields.get("maximumRecordAgeInSeconds") {
        event.maximum_record_age_secs = Some(small(ctx.whole(
            n,
            "maximumRecordAgeInSeconds",
            60..=604_800,
        )?));
    }
    if let Some(n) = fields.get("bisectBatchOnFunctionError") {
        event.bisect_batch_on_function_error = flag(ctx, n, "bisectBatchOnFunctionError")?;
    }
    if let Some(n) = fields.get("enabled") {
        event.enabled = flag(ctx, n, "enabled")?;
    }
    if let Some(n) = fields.get("functionResponseType") {
        let text = ctx.string(n, "functionResponseType")?;
        if text != "ReportBatchItemFailures" {
            return Err(ctx.error(
                n.loc,
                format!("`functionResponseType` must be `ReportBatchItemFailures`, found `{text}`"),
            ));
        }
        event.report_batch_item_failures = true;
    }
    event.starting_position = position(ctx, &fields, node.loc)?;
    if let Some(n) = fields.get("destinations") {
        event.on_failure = on_failure(ctx, n, path)?;
    }
    Ok(Some(event))
}

fn defaults(stream: String) -> StreamEvent {
    StreamEvent {
        stream,
        batch_size: DEFAULT_STREAM_BATCH_SIZE,
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

/// Values already range-checked well inside `u32`.
fn small(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn flag(ctx: &Ctx<'_>, node: &Node, field: &str) -> Result<bool, ManifestError> {
    let node = ctx.val(node)?;
    match node.value {
        Value::Bool(b) => Ok(b),
        _ => Err(ctx.expected(&node, field, "`true` or `false`")),
    }
}

fn position(
    ctx: &Ctx<'_>,
    fields: &crate::ctx::Fields<'_>,
    loc: crate::yaml::Loc,
) -> Result<StartingPosition, ManifestError> {
    let Some(n) = fields.get("startingPosition") else {
        return Ok(StartingPosition::TrimHorizon);
    };
    let text = ctx.string(n, "startingPosition")?;
    match text.as_str() {
        "TRIM_HORIZON" => Ok(StartingPosition::TrimHorizon),
        "LATEST" => Ok(StartingPosition::Latest),
        "AT_TIMESTAMP" => {
            let at = fields.get("startingPositionTimestamp").ok_or_else(|| {
                ctx.error(
                    loc,
                    "`startingPosition: AT_TIMESTAMP` needs `startingPositionTimestamp` (seconds since 1970)",
                )
            })?;
            let secs = ctx.whole(at, "startingPositionTimestamp", 0..=u64::from(u32::MAX))?;
            Ok(StartingPosition::AtTimestamp {
                at_ms: i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000),
            })
        }
        other => Err(ctx.error(
            n.loc,
            format!(
                "unknown `startingPosition` `{other}`, expected one of: {}",
                POSITIONS.join(", ")
            ),
        )),
    }
}

/// `destinations: { onFailure: … }`: a function, as for async invokes.
fn on_failure(
    ctx: &Ctx<'_>,
    node: &Node,
    path: &str,
) -> Result<Option<crate::Destination>, ManifestError> {
    let node = ctx.val(node)?;
    let dest_path = format!("{path}.destinations");
    let dests = ctx.fields(
        &node,
        "destinations",
        Section {
            name: "destinations",
            path: &dest_path,
        },
        &["onFailure"],
    )?;
    let Some(n) = dests.get("onFailure") else {
        return Ok(None);
    };
    let target = crate::async_invoke::target(ctx, n, "onFailure", &dest_path)?;
    if target == Some(crate::Destination::Dlq) {
        return Err(ctx.error(
            n.loc,
            "a stream mapping's `onFailure` must name a function (the dead-letter list holds async invocations)",
        ));
    }
    Ok(target)
}

/// The stream an ARN or a bare name stands for.
fn stream_name(ctx: &Ctx<'_>, node: &Node, text: &str) -> Result<Option<String>, ManifestError> {
    let text = text.trim();
    let name = match text.strip_prefix("arn:") {
        Some(_) => match kinesis_arn_name(text) {
            Some(name) => name,
            None => {
                let message = format!(
                    "`{text}` is not a Kinesis stream ARN (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`)"
                );
                return match ctx.flavor {
                    Flavor::Serverless => {
                        ctx.warn(node.loc, format!("{message}; the event is ignored"));
                        Ok(None)
                    }
                    Flavor::Rouse => Err(ctx.error(node.loc, message)),
                };
            }
        },
        None => text,
    };
    if !valid_stream_name(name) {
        return Err(ctx.error(
            node.loc,
            format!("invalid stream name `{name}`: 1 to 128 letters, digits, `_`, `-` or `.`"),
        ));
    }
    Ok(Some(name.to_string()))
}

/// `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME` → NAME.
fn kinesis_arn_name(text: &str) -> Option<&str> {
    let fields: Vec<&str> = text.splitn(6, ':').collect();
    match fields.as_slice() {
        ["arn", _, "kinesis", _, _, resource] => resource.strip_prefix("stream/"),
        _ => None,
    }
}

/// AWS's rule for stream names: 1–128 of letters, digits, `_`, `-`, `.`
/// (not the function-name rule); the one rule in [`crate::names`].
pub fn valid_stream_name(name: &str) -> bool {
    crate::names::check(crate::names::NameKind::Stream, name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinesis_arns_name_their_stream() {
        for (arn, name) in [
            (
                "arn:aws:kinesis:us-east-1:123:stream/orders",
                Some("orders"),
            ),
            ("arn:aws:kinesis:eu-west-1:1:stream/a.b-c", Some("a.b-c")),
            ("arn:aws:dynamodb:us-east-1:1:table/t/stream/x", None),
            ("arn:aws:kinesis:us-east-1:1:orders", None),
        ] {
            assert_eq!(kinesis_arn_name(arn), name, "{arn}");
        }
    }

    #[test]
    fn stream_names_follow_aws() {
        for (name, ok) in [("a", true), ("a b", false), ("", false), ("x/y", false)] {
            assert_eq!(valid_stream_name(name), ok, "{name}");
        }
    }
}
