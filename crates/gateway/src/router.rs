//! Route lookup: method + path template, and `{function}.{domain}` host names.
//!
//! Built once per deploy from the store's routes and swapped in whole, so a
//! lookup reads an immutable table with no lock.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use rouse_store::{RouteRecord, RouteShape};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// `{name+}`: the rest of the path, zero or more segments.
    Greedy(String),
}

impl Segment {
    /// Lower is more specific.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
            Segment::Greedy(_) => 2,
        }
    }
}

#[derive(Debug, Clone)]
struct Route {
    function: String,
    /// `None` for `ANY`.
    method: Option<String>,
    template: String,
    segments: Vec<Segment>,
    shape: RouteShape,
}

/// What the router needs to know about a deployed function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    pub name: String,
    /// Lambda functions get events; web functions get the request itself.
    pub lambda: bool,
    pub stage: String,
}

/// What a request resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'r> {
    pub function: &'r FunctionInfo,
    pub shape: RouteShape,
    /// The route was declared with `method: any`.
    pub any_method: bool,
    /// The template that matched (`resource` in API Gateway terms); `None`
    /// for host-based routing.
    pub template: Option<&'r str>,
    pub params: Vec<(&'r str, String)>,
}

#[derive(Debug, Default)]
pub struct Router {
    /// Most specific first; the first match wins.
    routes: Vec<Route>,
    domain: Option<String>,
    /// By lower-cased name (host names are case-insensitive).
    functions: BTreeMap<String, FunctionInfo>,
}

impl Router {
    /// `functions` are all deployed functions; routes naming others are dropped.
    pub fn new(
        routes: &[RouteRecord],
        functions: impl IntoIterator<Item = FunctionInfo>,
        domain: Option<String>,
    ) -> Router {
        let functions: BTreeMap<String, FunctionInfo> = functions
            .into_iter()
            .map(|f| (f.name.to_ascii_lowercase(), f))
            .collect();
        let mut routes: Vec<Route> = routes
            .iter()
            .filter(|r| functions.contains_key(&r.function.to_ascii_lowercase()))
            .map(|r| Route {
                function: r.function.clone(),
                method: (r.method != "ANY").then(|| r.method.to_ascii_uppercase()),
                template: r.path.clone(),
                segments: parse_template(&r.path),
                shape: r.shape,
            })
            .collect();
        routes.sort_by(specificity);
        Router {
            routes,
            domain: domain.map(|d| d.trim_start_matches('.').to_ascii_lowercase()),
            functions,
        }
    }

    pub fn lookup<'r>(
        &'r self,
        method: &str,
        path: &str,
        host: Option<&str>,
    ) -> Option<RouteMatch<'r>> {
        if let Some(function) = self.host_function(host) {
            return Some(RouteMatch {
                function,
                shape: RouteShape::HttpApi,
                any_method: true,
                template: None,
                params: Vec::new(),
            });
        }
        let path_segments: Vec<&str> = split(path).collect();
        self.routes.iter().find_map(|route| {
            if let Some(m) = &route.method {
                // HEAD is served by GET routes, as HTTP servers do.
                let method_ok = m == method || (method == "HEAD" && m == "GET");
                if !method_ok {
                    return None;
                }
            }
            let params = match_segments(&route.segments, &path_segments)?;
            Some(RouteMatch {
                function: self.function(&route.function)?,
                shape: route.shape,
                any_method: route.method.is_none(),
                template: Some(&route.template),
                params,
            })
        })
    }

    /// A deployed function by name (case-insensitive).
    pub fn function(&self, name: &str) -> Option<&FunctionInfo> {
        self.functions.get(&name.to_ascii_lowercase())
    }

    fn host_function(&self, host: Option<&str>) -> Option<&FunctionInfo> {
        let domain = self.domain.as_deref()?;
        let host = host?;
        let host = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        let host = host.to_ascii_lowercase();
        let label = host.strip_suffix(domain)?.strip_suffix('.')?;
        self.functions.get(label)
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// `function -> [METHOD path]`, for printing URLs after a deploy.
    pub fn by_function(&self) -> HashMap<&str, Vec<(String, &str)>> {
        let mut out: HashMap<&str, Vec<(String, &str)>> = HashMap::new();
        for r in &self.routes {
            out.entry(&r.function).or_default().push((
                r.method.clone().unwrap_or_else(|| "ANY".into()),
                &r.template,
            ));
        }
        out
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn parse_template(template: &str) -> Vec<Segment> {
    split(template)
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    Some(name) => Segment::Greedy(name.to_string()),
                    None => Segment::Param(name.to_string()),
                },
                None => Segment::Literal(s.to_string()),
            },
        )
        .collect()
}

fn match_segments<'r>(template: &'r [Segment], path: &[&str]) -> Option<Vec<(&'r str, String)>> {
    let mut params = Vec::new();
    for (i, segment) in template.iter().enumerate() {
        match segment {
            Segment::Greedy(name) => {
                params.push((name.as_str(), path.get(i..).unwrap_or_default().join("/")));
                return Some(params);
            }
            Segment::Literal(lit) => {
                if path.get(i) != Some(&lit.as_str()) {
                    return None;
                }
            }
            Segment::Param(name) => params.push((name.as_str(), (*path.get(i)?).to_string())),
        }
    }
    (template.len() == path.len()).then_some(params)
}

/// Literal beats `{param}` beats `{proxy+}`, segment by segment from the left;
/// then a specific method beats `ANY`.
fn specificity(a: &Route, b: &Route) -> Ordering {
    let ranks = |r: &Route| r.segments.iter().map(Segment::rank).collect::<Vec<_>>();
    ranks(a)
        .cmp(&ranks(b))
        .then_with(|| a.method.is_none().cmp(&b.method.is_none()))
        .then_with(|| a.template.cmp(&b.template))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(function: &str, method: &str, path: &str) -> RouteRecord {
        RouteRecord {
            function: function.into(),
            method: method.into(),
            path: path.into(),
            shape: RouteShape::Http,
        }
    }

    fn info(name: &str) -> FunctionInfo {
        FunctionInfo {
            name: name.into(),
            lambda: false,
            stage: "dev".into(),
        }
    }

    fn infos(names: &[&str]) -> Vec<FunctionInfo> {
        names.iter().map(|n| info(n)).collect()
    }

    fn router() -> Router {
        Router::new(
            &[
                route("catchall", "ANY", "/{proxy+}"),
                route("root", "GET", "/"),
                route("user", "GET", "/users/{id}"),
                route("me", "GET", "/users/me"),
                route("user-any", "ANY", "/users/{id}"),
                route("files", "GET", "/files/{path+}"),
                route("posts", "POST", "/users/{id}/posts"),
            ],
            infos(&[
                "catchall",
                "root",
                "user",
                "me",
                "user-any",
                "files",
                "posts",
                "site",
                "api-dev-web",
            ]),
            Some("fn.example.com".into()),
        )
    }

    #[test]
    fn most_specific_route_wins() {
        let r = router();
        let cases = [
            ("GET", "/", "root", vec![]),
            ("POST", "/", "catchall", vec![("proxy", "")]),
            ("GET", "/users/me", "me", vec![]),
            ("GET", "/users/42", "user", vec![("id", "42")]),
            ("DELETE", "/users/42", "user-any", vec![("id", "42")]),
            ("POST", "/users/42/posts", "posts", vec![("id", "42")]),
            (
                "GET",
                "/users/42/posts",
                "catchall",
                vec![("proxy", "users/42/posts")],
            ),
            (
                "GET",
                "/files/a/b/c.txt",
                "files",
                vec![("path", "a/b/c.txt")],
            ),
            ("HEAD", "/users/7", "user", vec![("id", "7")]),
            ("GET", "/users/42/", "user", vec![("id", "42")]),
        ];
        for (method, path, want, params) in cases {
            let m = r
                .lookup(method, path, None)
                .unwrap_or_else(|| panic!("{method} {path}"));
            assert_eq!(m.function.name, want, "{method} {path}");
            let params: Vec<(&str, String)> = params
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect();
            assert_eq!(m.params, params, "{method} {path}");
        }
    }

    #[test]
    fn routes_of_unknown_functions_are_dropped() {
        let r = Router::new(&[route("gone", "GET", "/x")], infos(&["other"]), None);
        assert!(r.lookup("GET", "/x", None).is_none());
        assert!(r.is_empty());
    }

    #[test]
    fn no_route_is_none() {
        let r = Router::new(
            &[route("user", "GET", "/users/{id}")],
            infos(&["user"]),
            None,
        );
        assert!(r.lookup("GET", "/users", None).is_none());
        assert!(r.lookup("POST", "/users/1", None).is_none());
        assert!(r.lookup("GET", "/users/1/x", None).is_none());
    }

    #[test]
    fn host_routing_needs_the_domain_and_a_known_function() {
        let r = router();
        let m = r
            .lookup("GET", "/anything", Some("site.fn.example.com:8080"))
            .unwrap();
        assert_eq!(m.function.name, "site");
        assert_eq!(
            r.lookup("GET", "/x", Some("API-DEV-WEB.fn.example.com"))
                .unwrap()
                .function
                .name,
            "api-dev-web"
        );
        // Unknown function: falls back to path routes.
        assert_eq!(
            r.lookup("GET", "/x", Some("nope.fn.example.com"))
                .unwrap()
                .function
                .name,
            "catchall"
        );
        // Another domain is not host routing.
        assert_eq!(
            r.lookup("GET", "/", Some("site.other.com"))
                .unwrap()
                .function
                .name,
            "root"
        );
    }
}
