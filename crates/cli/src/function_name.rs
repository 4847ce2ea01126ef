//! Lets commands take a function's short name (`web`) as well as its full
//! name (`shop-dev-web`), as the Serverless CLI does.

use anyhow::bail;
use rouse_api::types::FunctionSummary;

use crate::client::AdminClient;
use crate::exit;

pub(crate) async fn full(
    client: &AdminClient,
    name: &str,
    stage: Option<&str>,
) -> anyhow::Result<String> {
    let functions = crate::commands::ls::fetch(client, None).await?;
    pick(&functions, name, stage)
}

fn pick(functions: &[FunctionSummary], name: &str, stage: Option<&str>) -> anyhow::Result<String> {
    if functions.iter().any(|f| f.name == name) {
        return Ok(name.to_string());
    }
    let candidates: Vec<&FunctionSummary> = functions
        .iter()
        .filter(|f| stage.is_none_or(|s| f.stage == s))
        .filter(|f| f.name == format!("{}-{}-{name}", f.service, f.stage))
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one.name.clone()),
        [] => Err(exit::not_found(format!(
            "function {name} not found; see `rouse ls` for what is deployed"
        ))),
        many => {
            let names: Vec<&str> = many.iter().map(|f| f.name.as_str()).collect();
            bail!(
                "{name} is ambiguous: {}; use the full name or --stage",
                names.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(service: &str, stage: &str, short: &str) -> FunctionSummary {
        FunctionSummary {
            name: format!("{service}-{stage}-{short}"),
            service: service.into(),
            stage: stage.into(),
            version: 1,
            kind: "web".into(),
            routes: vec![],
            instances: vec![],
            updated_at: 0,
        }
    }

    #[test]
    fn short_and_full_names() {
        let all = [
            f("shop", "dev", "web"),
            f("shop", "prod", "web"),
            f("blog", "dev", "site"),
        ];
        assert_eq!(pick(&all, "shop-prod-web", None).unwrap(), "shop-prod-web");
        assert_eq!(pick(&all, "site", None).unwrap(), "blog-dev-site");
        assert_eq!(pick(&all, "web", Some("prod")).unwrap(), "shop-prod-web");
        let err = pick(&all, "web", None).unwrap_err().to_string();
        assert!(err.contains("ambiguous"), "{err}");
        assert!(pick(&all, "nope", None).is_err());
    }
}
