//! `sqs:` events: a function consuming a rouse queue, with Lambda's SQS
//! event source mapping settings. serverless.yml names the queue by ARN
//! (`arn:aws:sqs:REGION:ACCOUNT:NAME` is the rouse queue NAME) or by
//! `Fn::GetAtt` of an `AWS::SQS::Queue` of its `resources`; rouse.yaml may
//! also give the bare name (`sqs: jobs` or `sqs: { queue: jobs }`).

use std::collections::BTreeMap;

use crate::ctx::{Ctx, Section};
use crate::error::ManifestError;
use crate::yaml::{Node, Value};
use crate::{Flavor, QueueDeclaration, SqsEvent, DEFAULT_SQS_BATCH_SIZE};

const KEYS: &[&str] = &[
    "arn",
    "queue",
    "batchSize",
    "maximumBatchingWindow",
    "functionResponseType",
    "enabled",
];

/// `AWS::SQS::Queue` resources by logical id: the queue name each stands
/// for and what its properties declare.
pub(crate) type QueueResources = BTreeMap<String, (String, QueueDeclaration)>;

/// The mapping, or `None` for one rouse ignores (serverless.yml, with a
/// warning).
pub(crate) fn read(
    ctx: &Ctx<'_>,
    node: &Node,
    path: &str,
) -> Result<Option<SqsEvent>, ManifestError> {
    let node = ctx.val(node)?;
    if !matches!(node.value, Value::Map(_)) || is_intrinsic(&node) {
        return Ok(queue_ref(ctx, &node)?.map(|(q, d)| defaults(q, d)));
    }
    let section = Section {
        name: "sqs event",
        path,
    };
    let fields = ctx.fields(&node, "sqs", section, KEYS)?;
    let target = fields.get("arn").or_else(|| fields.get("queue")).ok_or_else(|| {
        ctx.error(
            node.loc,
            "sqs event needs `arn`, like `arn: arn:aws:sqs:us-east-1:000000000000:jobs` (or `Fn::GetAtt: [JobsQueue, Arn]`)",
        )
    })?;
    let Some((queue, declared)) = queue_ref(ctx, target)? else {
        return Ok(None);
    };
    let mut event = defaults(queue, declared);
    if let Some(n) = fields.get("batchSize") {
        event.batch_size = small(ctx.whole(n, "batchSize", 1..=10_000)?);
    }
    if let Some(n) = fields.get("maximumBatchingWindow") {
        event.batch_window_secs = small(ctx.whole(n, "maximumBatchingWindow", 0..=300)?);
    }
    if event.batch_size > 10 && event.batch_window_secs == 0 {
        // Lambda's rule: more than 10 messages are only gathered over a window.
        return Err(ctx.error(
            node.loc,
            "an sqs `batchSize` above 10 needs `maximumBatchingWindow` (at least 1 second)",
        ));
    }
    if let Some(n) = fields.get("enabled") {
        let n = ctx.val(n)?;
        event.enabled = match n.value {
            Value::Bool(b) => b,
            _ => return Err(ctx.expected(&n, "enabled", "`true` or `false`")),
        };
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
    Ok(Some(event))
}

fn defaults(queue: String, declared: Option<QueueDeclaration>) -> SqsEvent {
    SqsEvent {
        queue,
        batch_size: DEFAULT_SQS_BATCH_SIZE,
        batch_window_secs: 0,
        report_batch_item_failures: false,
        enabled: true,
        declared,
    }
}

/// Values already range-checked well inside `u32`.
fn small(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn is_intrinsic(node: &Node) -> bool {
    matches!(&node.value, Value::Map(e) if e.len() == 1 && e[0].0.key_text().starts_with("Fn::"))
}

/// The queue an ARN, a bare name or a `Fn::GetAtt` stands for.
fn queue_ref(
    ctx: &Ctx<'_>,
    node: &Node,
) -> Result<Option<(String, Option<QueueDeclaration>)>, ManifestError> {
    let node = ctx.val(node)?;
    if is_intrinsic(&node) {
        return get_att(ctx, &node);
    }
    let text = ctx.non_empty(&node, "arn")?;
    let text = text.trim();
    let name = match text.strip_prefix("arn:") {
        Some(_) => match queue_arn_name(text) {
            Some(name) => name,
            None => {
                let message =
                    format!("`{text}` is not an SQS queue ARN (`arn:aws:sqs:REGION:ACCOUNT:NAME`)");
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
    let name = checked_name(ctx, &node, name)?;
    let declared = ctx
        .queue_resources
        .values()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| d.clone());
    Ok(Some((name, declared)))
}

fn checked_name(ctx: &Ctx<'_>, node: &Node, name: &str) -> Result<String, ManifestError> {
    crate::names::check(crate::names::NameKind::Queue, name).map_err(|m| ctx.error(node.loc, m))?;
    if name.ends_with(".fifo") {
        return Err(ctx.error(
            node.loc,
            format!("queue `{name}`: FIFO queues are not supported by rouse yet"),
        ));
    }
    Ok(name.to_string())
}

/// `{"Fn::GetAtt": [Logical, Arn]}` or `!GetAtt Logical.Arn` of a queue
/// resource.
fn get_att(
    ctx: &Ctx<'_>,
    node: &Node,
) -> Result<Option<(String, Option<QueueDeclaration>)>, ManifestError> {
    let target = get_att_target(node);
    let message = match &target {
        Some((logical, attr)) if attr == "Arn" => match ctx.queue_resources.get(logical) {
            Some((name, declared)) => return Ok(Some((name.clone(), Some(declared.clone())))),
            None => format!(
                "`Fn::GetAtt` names `{logical}`, which is not an `AWS::SQS::Queue` of `resources.Resources`"
            ),
        },
        _ => "an sqs event's `arn` may be `Fn::GetAtt: [QueueResource, Arn]`, not another intrinsic function".to_string(),
    };
    match ctx.flavor {
        Flavor::Serverless => {
            ctx.warn(node.loc, format!("{message}; the event is ignored"));
            Ok(None)
        }
        Flavor::Rouse => Err(ctx.error(node.loc, message)),
    }
}

/// (logical id, attribute) of `{"Fn::GetAtt": [Logical, Attr]}` or
/// `!GetAtt Logical.Attr`.
fn get_att_target(node: &Node) -> Option<(String, String)> {
    let Value::Map(entries) = &node.value else {
        return None;
    };
    let [(key, arg)] = entries.as_slice() else {
        return None;
    };
    match (key.key_text().as_str(), &arg.value) {
        ("Fn::GetAtt", Value::Str(s)) => s
            .split_once('.')
            .map(|(l, a)| (l.to_string(), a.to_string())),
        ("Fn::GetAtt", Value::Seq(items)) if items.len() == 2 => {
            match (&items[0].value, &items[1].value) {
                (Value::Str(l), Value::Str(a)) => Some((l.clone(), a.clone())),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `arn:aws:sqs:REGION:ACCOUNT:NAME` → NAME.
pub(crate) fn queue_arn_name(text: &str) -> Option<&str> {
    let fields: Vec<&str> = text.splitn(6, ':').collect();
    match fields.as_slice() {
        ["arn", _, "sqs", _, _, name] if !name.is_empty() && !name.contains(':') => Some(name),
        _ => None,
    }
}

const QUEUE_PROPERTIES: &[&str] = &[
    "QueueName",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "RedrivePolicy",
];

/// serverless.yml's `resources.Resources`: the `AWS::SQS::Queue` entries,
/// which rouse creates as queues; every other resource is ignored with a
/// warning. Only what a queue uses is resolved (other resources may hold
/// variables of sources rouse does not know).
pub(crate) fn queue_resources(
    ctx: &Ctx<'_>,
    resources: &Node,
) -> Result<QueueResources, ManifestError> {
    let mut out = QueueResources::new();
    let Value::Map(sections) = &resources.value else {
        return Ok(out);
    };
    for (key, value) in sections {
        if key.key_text() != "Resources" {
            ctx.warn(
                key.loc,
                format!(
                    "`resources.{}` is not supported by rouse and is ignored",
                    key.key_text()
                ),
            );
            continue;
        }
        let Value::Map(entries) = &value.value else {
            continue;
        };
        let mut redrives: Vec<(String, Node)> = Vec::new();
        for (logical, resource) in entries {
            let logical = logical.key_text();
            let kind = match &resource.value {
                Value::Map(fields) => fields
                    .iter()
                    .find(|(k, _)| k.key_text() == "Type")
                    .and_then(|(_, v)| v.scalar_text().map(|t| t.into_owned())),
                _ => None,
            };
            if kind.as_deref() != Some("AWS::SQS::Queue") {
                ctx.warn(
                    resource.loc,
                    format!(
                        "`resources.Resources.{logical}` is not supported by rouse and is ignored (of resources, only `AWS::SQS::Queue` is made, as a rouse queue)"
                    ),
                );
                continue;
            }
            let properties = match &resource.value {
                Value::Map(fields) => fields
                    .iter()
                    .find(|(k, _)| k.key_text() == "Properties")
                    .map(|(_, v)| v.clone()),
                _ => None,
            };
            let mut declared = QueueDeclaration::default();
            let mut name = logical.clone();
            if let Some(props) = properties {
                let props = ctx.val(&props)?;
                let path = format!("resources.Resources.{logical}.Properties");
                let fields = ctx.fields(
                    &props,
                    "Properties",
                    Section {
                        name: "queue properties",
                        path: &path,
                    },
                    QUEUE_PROPERTIES,
                )?;
                if let Some(n) = fields.get("QueueName") {
                    let text = ctx.non_empty(n, "QueueName")?;
                    name = checked_name(ctx, n, text.trim())?;
                }
                if let Some(n) = fields.get("VisibilityTimeout") {
                    declared.visibility_timeout_secs =
                        Some(small(ctx.whole(n, "VisibilityTimeout", 0..=43_200)?));
                }
                if let Some(n) = fields.get("MessageRetentionPeriod") {
                    declared.message_retention_secs = Some(small(ctx.whole(
                        n,
                        "MessageRetentionPeriod",
                        60..=1_209_600,
                    )?));
                }
                if let Some(n) = fields.get("DelaySeconds") {
                    declared.delay_secs = Some(small(ctx.whole(n, "DelaySeconds", 0..=900)?));
                }
                if let Some(n) = fields.get("RedrivePolicy") {
                    redrives.push((logical.clone(), n.clone()));
                }
            }
            out.insert(logical, (name, declared));
        }
        // Read once every queue's name is known: the target may be any of them.
        for (logical, node) in redrives {
            let (dlq, max) = redrive_policy(ctx, &node, &out)?;
            if let Some((_, declared)) = out.get_mut(&logical) {
                declared.dead_letter_queue = Some(dlq);
                declared.max_receive_count = Some(max);
            }
        }
    }
    Ok(out)
}

/// `RedrivePolicy: { deadLetterTargetArn, maxReceiveCount }`.
fn redrive_policy(
    ctx: &Ctx<'_>,
    node: &Node,
    queues: &QueueResources,
) -> Result<(String, u32), ManifestError> {
    let node = ctx.val(node)?;
    let fields = ctx.fields(
        &node,
        "RedrivePolicy",
        Section {
            name: "RedrivePolicy",
            path: "RedrivePolicy",
        },
        &["deadLetterTargetArn", "maxReceiveCount"],
    )?;
    let target = fields
        .get("deadLetterTargetArn")
        .ok_or_else(|| ctx.error(node.loc, "`RedrivePolicy` needs `deadLetterTargetArn`"))?;
    let max = fields
        .get("maxReceiveCount")
        .ok_or_else(|| ctx.error(node.loc, "`RedrivePolicy` needs `maxReceiveCount`"))?;
    let max = small(ctx.whole(max, "maxReceiveCount", 1..=1_000)?);
    let target = ctx.val(target)?;
    let name = if is_intrinsic(&target) {
        match get_att_target(&target) {
            Some((logical, attr)) if attr == "Arn" => match queues.get(&logical) {
                Some((name, _)) => name.clone(),
                None => {
                    return Err(ctx.error(
                        target.loc,
                        format!("`deadLetterTargetArn` names `{logical}`, which is not an `AWS::SQS::Queue` of `resources.Resources`"),
                    ))
                }
            },
            _ => {
                return Err(ctx.error(
                    target.loc,
                    "`deadLetterTargetArn` may be a queue ARN or `Fn::GetAtt: [Queue, Arn]`",
                ))
            }
        }
    } else {
        let text = ctx.non_empty(&target, "deadLetterTargetArn")?;
        let name = queue_arn_name(text.trim()).ok_or_else(|| {
            ctx.error(
                target.loc,
                format!("`deadLetterTargetArn` must be a queue ARN or `Fn::GetAtt: [Queue, Arn]`, found `{text}`"),
            )
        })?;
        checked_name(ctx, &target, name)?
    };
    Ok((name, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqs_arns_name_their_queue() {
        for (arn, name) in [
            ("arn:aws:sqs:us-east-1:123:jobs", Some("jobs")),
            ("arn:aws:sqs:eu-west-1:1:a-b_c", Some("a-b_c")),
            ("arn:aws:sns:us-east-1:1:topic", None),
            ("arn:aws:sqs:us-east-1:1:", None),
            ("arn:aws:sqs:us-east-1:1:a:b", None),
        ] {
            assert_eq!(queue_arn_name(arn), name, "{arn}");
        }
    }
}
