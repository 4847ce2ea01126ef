//! `maximumRetryAttempts`, `maximumEventAge` and `destinations` of a
//! function: how its asynchronous invocations are retried and where their
//! outcome goes.

use crate::ctx::{Ctx, Fields, Section};
use crate::error::ManifestError;
use crate::yaml::{Node, Value};
use crate::{AsyncInvoke, Destination, FunctionSpec, MAXIMUM_EVENT_AGE_SECS};

const DESTINATION_KEYS: &[&str] = &["onSuccess", "onFailure"];
/// serverless.yml's long form: `onFailure: { type: function, arn: … }`.
const TARGET_KEYS: &[&str] = &["type", "arn"];
/// The word that names rouse's own dead-letter list.
const DLQ: &str = "dlq";

/// Reads the three keys from a function's fields.
pub(crate) fn read(
    ctx: &Ctx<'_>,
    fields: &Fields<'_>,
    path: &str,
) -> Result<AsyncInvoke, ManifestError> {
    let mut config = AsyncInvoke::default();
    if let Some(n) = fields.get("maximumRetryAttempts") {
        let v = ctx.whole(n, "maximumRetryAttempts", 0..=2)?;
        config.maximum_retry_attempts = u32::try_from(v).unwrap_or(2);
    }
    if let Some(n) = fields.get("maximumEventAge") {
        let range =
            u64::from(*MAXIMUM_EVENT_AGE_SECS.start())..=u64::from(*MAXIMUM_EVENT_AGE_SECS.end());
        let v = ctx.whole(n, "maximumEventAge", range)?;
        config.maximum_event_age_secs = u32::try_from(v).unwrap_or(*MAXIMUM_EVENT_AGE_SECS.end());
    }
    if let Some(n) = fields.get("destinations") {
        let node = ctx.val(n)?;
        let dest_path = format!("{path}.destinations");
        let dests = ctx.fields(
            &node,
            "destinations",
            Section {
                name: "destinations",
                path: &dest_path,
            },
            DESTINATION_KEYS,
        )?;
        if let Some(n) = dests.get("onSuccess") {
            config.on_success = target(ctx, n, "onSuccess", &dest_path)?;
            if config.on_success == Some(Destination::Dlq) {
                return Err(ctx.error(
                    n.loc,
                    "`onSuccess` must name a function: the dead-letter list (`dlq`) is for failures",
                ));
            }
        }
        if let Some(n) = dests.get("onFailure") {
            config.on_failure = target(ctx, n, "onFailure", &dest_path)?;
        }
    }
    Ok(config)
}

/// A function name, `arn:aws:lambda:…:function:NAME`, or `dlq`. Targets
/// rouse cannot deliver to (SQS, SNS, EventBridge ARNs) are warned about and
/// ignored in serverless.yml, and errors in rouse.yaml.
pub(crate) fn target(
    ctx: &Ctx<'_>,
    node: &Node,
    field: &str,
    path: &str,
) -> Result<Option<Destination>, ManifestError> {
    let node = ctx.val(node)?;
    let text = match &node.value {
        Value::Map(_) => {
            let target_path = format!("{path}.{field}");
            let fields = ctx.fields(
                &node,
                field,
                Section {
                    name: field,
                    path: &target_path,
                },
                TARGET_KEYS,
            )?;
            let Some(arn) = fields.get("arn") else {
                return Err(ctx.error(node.loc, format!("`{field}` needs an `arn`")));
            };
            ctx.non_empty(arn, "arn")?
        }
        _ => ctx.non_empty(&node, field)?,
    };
    let text = text.trim();
    if text == DLQ {
        return Ok(Some(Destination::Dlq));
    }
    if let Some(name) = lambda_arn_name(text) {
        return Ok(Some(Destination::Function { name }));
    }
    if text.starts_with("arn:") {
        let message = format!(
            "`{path}.{field}`: rouse delivers to functions and its dead-letter list (`dlq`), not to {text}"
        );
        return match ctx.flavor {
            crate::Flavor::Serverless => {
                ctx.warn(node.loc, format!("{message}; it is ignored"));
                Ok(None)
            }
            crate::Flavor::Rouse => Err(ctx.error(node.loc, message)),
        };
    }
    Ok(Some(Destination::Function {
        name: text.to_string(),
    }))
}

/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]` → NAME.
fn lambda_arn_name(text: &str) -> Option<String> {
    let fields: Vec<&str> = text.split(':').collect();
    match fields.as_slice() {
        ["arn", _, "lambda", _, _, "function", name, ..] if !name.is_empty() => {
            Some((*name).to_string())
        }
        _ => None,
    }
}

/// Destinations naming a function of the same manifest by its key get that
/// function's full name; other names are taken as full names already.
pub(crate) fn qualify(functions: &mut [FunctionSpec]) {
    let names: Vec<(String, String)> = functions
        .iter()
        .map(|f| (f.short_name.clone(), f.name.clone()))
        .collect();
    let full = |dest: &mut Option<Destination>| {
        if let Some(Destination::Function { name }) = dest {
            if let Some((_, full)) = names.iter().find(|(short, _)| short == name) {
                *name = full.clone();
            }
        }
    };
    for f in functions {
        full(&mut f.async_invoke.on_success);
        full(&mut f.async_invoke.on_failure);
        for event in &mut f.events {
            if let crate::Event::Stream(stream) = event {
                full(&mut stream.on_failure);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_arns_name_their_function() {
        let cases = [
            (
                "arn:aws:lambda:us-east-1:123456789012:function:failures",
                Some("failures"),
            ),
            (
                "arn:aws:lambda:eu-west-1:1:function:shop-dev-f:live",
                Some("shop-dev-f"),
            ),
            ("arn:aws:sqs:us-east-1:1:queue", None),
            ("arn:aws:lambda:us-east-1:1:function:", None),
            ("failures", None),
        ];
        for (arn, name) in cases {
            assert_eq!(lambda_arn_name(arn).as_deref(), name, "{arn}");
        }
    }
}
