//! Which version of which function an Invoke API call runs, from the route
//! table; the shell then checks a numbered version against the store.

use super::error::InvokeError;
use crate::router::FunctionInfo;

/// The version `qualifier` names on `function`: `None` for the current one
/// (no qualifier, `$LATEST`, or a function that is not deployed, which
/// [`invocable`] reports), a number for a version or an alias (a weighted
/// alias picks with `roll`, uniform in `[0, 1)`). `Err` carries a
/// qualifier that names nothing.
pub(crate) fn pick_version(
    function: Option<&FunctionInfo>,
    qualifier: Option<&str>,
    roll: f64,
) -> Result<Option<u32>, String> {
    match (function, qualifier) {
        (None, _) | (Some(_), None | Some("$LATEST")) => Ok(None),
        (Some(_), Some(q)) if q.bytes().all(|b| b.is_ascii_digit()) => match q.parse::<u32>() {
            Ok(v) => Ok(Some(v)),
            Err(_) => Err(q.to_string()),
        },
        (Some(f), Some(alias)) => match f.aliases.get(alias) {
            Some(target) => Ok(Some(target.pick(roll))),
            None => Err(alias.to_string()),
        },
    }
}

/// Whether `name` can be called through the Invoke API: it exists
/// (`lambda` is `None` otherwise) and is a lambda function.
pub(crate) fn invocable(name: &str, lambda: Option<bool>) -> Result<(), InvokeError> {
    match lambda {
        None => Err(InvokeError::NotFound(name.to_string())),
        Some(false) => Err(InvokeError::InvalidParameter(format!(
            "{name} is a web function: call it over HTTP, not through the Invoke API"
        ))),
        Some(true) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rouse_store::Canary;

    use super::*;
    use crate::router::AliasTarget;

    fn function() -> FunctionInfo {
        let mut aliases = BTreeMap::new();
        aliases.insert(
            "live".to_string(),
            AliasTarget {
                version: 3,
                canary: Some(Canary {
                    version: 4,
                    weight: 0.25,
                }),
            },
        );
        aliases.insert(
            "prod".to_string(),
            AliasTarget {
                version: 2,
                canary: None,
            },
        );
        FunctionInfo {
            name: "hello".into(),
            lambda: true,
            stage: "dev".into(),
            aliases,
            budget: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn qualifiers_name_versions() {
        let f = function();
        // (deployed, qualifier, roll, expected)
        let cases = [
            (true, None, 0.0, Ok(None)),
            (true, Some("$LATEST"), 0.0, Ok(None)),
            (true, Some("7"), 0.0, Ok(Some(7))),
            (true, Some("99999999999"), 0.0, Err("99999999999")),
            (true, Some("prod"), 0.0, Ok(Some(2))),
            (true, Some("live"), 0.9, Ok(Some(3))),
            (true, Some("live"), 0.1, Ok(Some(4))),
            (true, Some("staging"), 0.0, Err("staging")),
            // Not deployed: reported as a missing function, not qualifier.
            (false, Some("staging"), 0.0, Ok(None)),
        ];
        for (deployed, qualifier, roll, expected) in cases {
            let function = deployed.then_some(&f);
            assert_eq!(
                pick_version(function, qualifier, roll),
                expected.map_err(str::to_string),
                "{deployed} {qualifier:?} {roll}"
            );
        }
    }

    #[test]
    fn only_deployed_lambda_functions_are_invocable() {
        let web = "hello is a web function: call it over HTTP, not through the Invoke API";
        let cases = [
            (None, Err(InvokeError::NotFound("hello".into()))),
            (Some(false), Err(InvokeError::InvalidParameter(web.into()))),
            (Some(true), Ok(())),
        ];
        for (lambda, expected) in cases {
            assert_eq!(invocable("hello", lambda), expected, "{lambda:?}");
        }
    }
}
