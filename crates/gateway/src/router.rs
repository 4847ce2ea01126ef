//! Route lookup: method + path template, and `{function}.{domain}` host names.
//! Routes of a stage served with `stageRouting: prefix` sit under a literal
//! `/{stage}` segment; with `host`, in a table of their own for the host
//! `{stage}.{domain}`.
//!
//! Built once per deploy from the store's routes and swapped in whole, so a
//! lookup reads an immutable table with no lock.
//!
//! Longer than other modules because of its tests: the trie is checked
//! against a linear scan over the sorted routes on random route tables,
//! which needs the generators beside it; the code itself is under 400 lines.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rouse_manifest::{RoutePolicy, StageRouting};
use rouse_store::{Canary, RouteRecord, RouteShape};

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
    /// What the path is matched against: the template, behind the stage
    /// segment for prefix routing.
    segments: Vec<Segment>,
    shape: RouteShape,
    /// `Some(stage)` when the route is served under `/{stage}`.
    stage_prefix: Option<String>,
    /// `Some(lower-cased stage)` when the route is served on `{stage}.{domain}`.
    host_stage: Option<String>,
    /// CORS and authorizer, when the route has any.
    policy: Option<Arc<RoutePolicy>>,
}

/// Route policies by (lower-cased function, shape, upper-case method or
/// `ANY`, template).
pub(crate) type PolicyTable = HashMap<(String, RouteShape, String, String), Arc<RoutePolicy>>;

/// What the router needs to know about a deployed function.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FunctionInfo {
    pub name: String,
    /// Lambda functions get events; web functions get the request itself.
    pub lambda: bool,
    pub stage: String,
    /// The function's aliases by name; HTTP routes serve `live` when it exists.
    pub aliases: BTreeMap<String, AliasTarget>,
    /// The longest a request may take here (queueing, a cold start, the
    /// run): how long a node that forwards it waits.
    pub budget: std::time::Duration,
}

/// [`FunctionInfo::budget`] of a function: its `queueTimeout`,
/// `startTimeout` and `timeout`, and a second for the way.
pub(crate) fn budget(spec: &rouse_manifest::FunctionSpec) -> std::time::Duration {
    let secs =
        spec.scaling.queue_timeout_secs + spec.scaling.start_timeout_secs + spec.timeout_secs + 1.0;
    std::time::Duration::try_from_secs_f64(secs).unwrap_or(std::time::Duration::from_secs(900))
}

/// The alias HTTP routes serve when a function has it.
pub(crate) const LIVE_ALIAS: &str = "live";

/// Where an alias sends requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AliasTarget {
    pub version: u32,
    pub canary: Option<Canary>,
}

impl AliasTarget {
    /// The version one request runs; `roll` is uniform in `[0, 1)`, and
    /// below the canary's weight picks the canary.
    pub(crate) fn pick(&self, roll: f64) -> u32 {
        match self.canary {
            Some(canary) if roll < canary.weight => canary.version,
            _ => self.version,
        }
    }
}

/// What a request resolved to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RouteMatch<'r> {
    pub function: &'r FunctionInfo,
    pub shape: RouteShape,
    /// The route was declared with `method: any`.
    pub any_method: bool,
    /// The template that matched (`resource` in API Gateway terms); `None`
    /// for host-based routing.
    pub template: Option<&'r str>,
    pub params: Vec<(&'r str, String)>,
    /// `Some(stage)` when the route is served under `/{stage}`: the path
    /// the function sees starts after it.
    pub stage_prefix: Option<&'r str>,
    /// The route's CORS and authorizer, if it has any.
    pub policy: Option<&'r RoutePolicy>,
}

/// Route indices that end at one trie node, by method. Indices point into
/// `Router::routes`, whose order is the precedence order, so among several
/// candidates the smallest index is the one the precedence rules pick.
#[derive(Debug, Default)]
struct Endpoints {
    /// Upper-cased method -> smallest route index declared with it.
    methods: HashMap<String, usize>,
    /// Smallest index of an `ANY` route.
    any: Option<usize>,
}

impl Endpoints {
    fn insert(&mut self, method: Option<&str>, index: usize) {
        // Routes are inserted in precedence order, so the first one stays.
        match method {
            Some(m) => {
                self.methods.entry(m.to_string()).or_insert(index);
            }
            None => {
                self.any.get_or_insert(index);
            }
        }
    }

    /// The route serving `method` here, if any. A specific method always
    /// precedes `ANY` in `Router::routes`, so taking the minimum keeps
    /// "specific beats ANY" without a special case.
    fn pick(&self, method: &str) -> Option<usize> {
        let exact = self.methods.get(method).copied();
        // HEAD is served by GET routes, as HTTP servers do.
        let get = (method == "HEAD")
            .then(|| self.methods.get("GET").copied())
            .flatten();
        [exact, get, self.any].into_iter().flatten().min()
    }
}

/// One path position. Lookup tries literal, then `{param}`, then greedy, and
/// backtracks when a branch fails deeper down, which visits matching routes
/// in the same order as the precedence sort (literal < param < greedy,
/// segment by segment; a template ending here before one continuing with a
/// greedy segment).
#[derive(Debug, Default)]
struct Node {
    literals: HashMap<String, Node>,
    param: Option<Box<Node>>,
    /// Routes whose template ends exactly here.
    end: Endpoints,
    /// Routes with a `{name+}` segment here: they match any rest of the path,
    /// including none, and ignore template segments after the greedy one.
    greedy: Option<Endpoints>,
}

impl Node {
    fn insert(&mut self, segments: &[Segment], method: Option<&str>, index: usize) {
        let mut node = self;
        for segment in segments {
            node = match segment {
                Segment::Literal(lit) => node.literals.entry(lit.clone()).or_default(),
                Segment::Param(_) => node.param.get_or_insert_with(Default::default),
                Segment::Greedy(_) => {
                    node.greedy
                        .get_or_insert_with(Default::default)
                        .insert(method, index);
                    return;
                }
            };
        }
        node.end.insert(method, index);
    }

    /// The index of the route serving `method` at `path`; `visits` counts the
    /// nodes entered, so tests can bound the work of a lookup.
    fn find(&self, method: &str, path: &[&str], visits: &mut usize) -> Option<usize> {
        *visits += 1;
        let here = match path.split_first() {
            Some((first, rest)) => self
                .literals
                .get(*first)
                .and_then(|child| child.find(method, rest, visits))
                .or_else(|| {
                    self.param
                        .as_ref()
                        .and_then(|child| child.find(method, rest, visits))
                }),
            None => self.end.pick(method),
        };
        here.or_else(|| self.greedy.as_ref().and_then(|g| g.pick(method)))
    }
}

#[derive(Debug, Default)]
pub(crate) struct Router {
    /// Most specific first: the precedence order lookups resolve ties with.
    routes: Vec<Route>,
    /// Every route in `routes` served on any host, by path segment.
    trie: Node,
    /// Routes served only on `{stage}.{domain}`, by lower-cased stage.
    stage_hosts: HashMap<String, Node>,
    domain: Option<String>,
    /// By lower-cased name (host names are case-insensitive).
    functions: BTreeMap<String, FunctionInfo>,
}

impl Router {
    /// `functions` are all deployed functions; routes naming others are dropped.
    pub(crate) fn new(
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
            .filter_map(|r| {
                let function = functions.get(&r.function.to_ascii_lowercase())?;
                let template = parse_template(&r.path);
                let (segments, stage_prefix) = match r.stage_routing {
                    StageRouting::Prefix => {
                        let mut segments = vec![Segment::Literal(function.stage.clone())];
                        segments.extend(template);
                        (segments, Some(function.stage.clone()))
                    }
                    StageRouting::None | StageRouting::Host => (template, None),
                };
                Some(Route {
                    function: r.function.clone(),
                    method: (r.method != "ANY").then(|| r.method.to_ascii_uppercase()),
                    template: r.path.clone(),
                    segments,
                    shape: r.shape,
                    stage_prefix,
                    host_stage: (r.stage_routing == StageRouting::Host)
                        .then(|| function.stage.to_ascii_lowercase()),
                    policy: None,
                })
            })
            .collect();
        routes.sort_by(specificity);
        let mut trie = Node::default();
        let mut stage_hosts: HashMap<String, Node> = HashMap::new();
        for (index, route) in routes.iter().enumerate() {
            let node = match &route.host_stage {
                Some(stage) => stage_hosts.entry(stage.clone()).or_default(),
                None => &mut trie,
            };
            node.insert(&route.segments, route.method.as_deref(), index);
        }
        Router {
            routes,
            trie,
            stage_hosts,
            domain: domain.map(|d| d.trim_start_matches('.').to_ascii_lowercase()),
            functions,
        }
    }

    pub(crate) fn lookup<'r>(
        &'r self,
        method: &str,
        path: &str,
        host: Option<&str>,
    ) -> Option<RouteMatch<'r>> {
        let label = self.host_label(host);
        if let Some(function) = label.as_deref().and_then(|l| self.functions.get(l)) {
            return Some(RouteMatch {
                function,
                shape: RouteShape::HttpApi,
                any_method: true,
                template: None,
                params: Vec::new(),
                stage_prefix: None,
                policy: None,
            });
        }
        let path_segments: Vec<&str> = split(path).collect();
        // A stage's own host first; other routes still answer there.
        let index = label
            .as_deref()
            .and_then(|l| self.stage_hosts.get(l))
            .and_then(|trie| trie.find(method, &path_segments, &mut 0))
            .or_else(|| self.trie.find(method, &path_segments, &mut 0))?;
        let route = &self.routes[index];
        Some(RouteMatch {
            function: self.function(&route.function)?,
            shape: route.shape,
            any_method: route.method.is_none(),
            template: Some(&route.template),
            params: match_segments(&route.segments, &path_segments)?,
            stage_prefix: route.stage_prefix.as_deref(),
            policy: route.policy.as_deref(),
        })
    }

    /// Attaches each route's policy, found by function, shape, method and
    /// template (the function specs hold them; the route rows do not).
    pub(crate) fn with_policies(mut self, policies: &PolicyTable) -> Router {
        for route in &mut self.routes {
            let key = (
                route.function.to_ascii_lowercase(),
                route.shape,
                route.method.clone().unwrap_or_else(|| "ANY".to_string()),
                route.template.clone(),
            );
            route.policy = policies.get(&key).cloned();
        }
        self
    }

    /// A deployed function by name (case-insensitive).
    pub(crate) fn function(&self, name: &str) -> Option<&FunctionInfo> {
        self.functions.get(&name.to_ascii_lowercase())
    }

    pub(crate) fn function_names(&self) -> Vec<String> {
        self.functions.values().map(|f| f.name.clone()).collect()
    }

    /// The lower-cased `{label}` of a `{label}.{domain}` host.
    fn host_label(&self, host: Option<&str>) -> Option<String> {
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
        Some(host.strip_suffix(domain)?.strip_suffix('.')?.to_string())
    }
}

/// How many routes the table holds, for tests.
#[cfg(test)]
impl Router {
    fn len(&self) -> usize {
        self.routes.len()
    }

    fn is_empty(&self) -> bool {
        self.routes.is_empty()
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
            stage_routing: StageRouting::None,
        }
    }

    fn info(name: &str) -> FunctionInfo {
        FunctionInfo {
            name: name.into(),
            lambda: false,
            stage: "dev".into(),
            aliases: BTreeMap::new(),
            budget: std::time::Duration::ZERO,
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
    fn literal_dead_end_backtracks_to_param_and_greedy() {
        let r = Router::new(
            &[
                route("deep", "GET", "/a/b/c"),
                route("param", "GET", "/{x}/b/d"),
                route("greedy", "GET", "/{x}/{rest+}"),
                route("post-only", "POST", "/a/b/e"),
            ],
            infos(&["deep", "param", "greedy", "post-only"]),
            None,
        );
        let got = |method: &str, path: &str| {
            r.lookup(method, path, None)
                .map(|m| (m.function.name.clone(), m.params))
        };
        assert_eq!(got("GET", "/a/b/c").unwrap().0, "deep");
        // `a` matches the literal branch, which has no `d` below `b`.
        assert_eq!(
            got("GET", "/a/b/d"),
            Some(("param".into(), vec![("x", "a".into())]))
        );
        // The literal route exists but not for GET: the greedy one serves it.
        assert_eq!(
            got("GET", "/a/b/e"),
            Some((
                "greedy".into(),
                vec![("x", "a".into()), ("rest", "b/e".into())]
            ))
        );
        assert_eq!(
            got("GET", "/a"),
            Some((
                "greedy".into(),
                vec![("x", "a".into()), ("rest", String::new())]
            ))
        );
        assert_eq!(got("GET", "/"), None);
    }

    /// The linear scan the trie replaced: the first route, in precedence
    /// order, whose method and segments match.
    fn linear_lookup<'r>(r: &'r Router, method: &str, path: &str) -> Option<RouteMatch<'r>> {
        let path_segments: Vec<&str> = split(path).collect();
        r.routes.iter().find_map(|route| {
            if let Some(m) = &route.method {
                let method_ok = m == method || (method == "HEAD" && m == "GET");
                if !method_ok {
                    return None;
                }
            }
            let params = match_segments(&route.segments, &path_segments)?;
            Some(RouteMatch {
                function: r.function(&route.function)?,
                shape: route.shape,
                any_method: route.method.is_none(),
                template: Some(&route.template),
                params,
                stage_prefix: route.stage_prefix.as_deref(),
                policy: None,
            })
        })
    }

    /// xorshift64: deterministic, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[self.below(xs.len())]
        }
    }

    // A small alphabet, so generated paths hit literals, params and greedy
    // segments of the same templates and precedence actually decides.
    const LITERALS: &[&str] = &["a", "b", "users", "me", "x"];
    const PARAMS: &[&str] = &["{id}", "{name}", "{proxy+}", "{path+}"];
    const METHODS: &[&str] = &["GET", "POST", "DELETE", "HEAD", "ANY", "get"];

    fn random_template(rng: &mut Rng) -> String {
        let len = rng.below(5);
        let mut out = String::new();
        for _ in 0..len {
            out.push('/');
            out.push_str(if rng.below(3) == 0 {
                rng.pick(PARAMS)
            } else {
                rng.pick(LITERALS)
            });
        }
        if out.is_empty() || rng.below(8) == 0 {
            out.push('/');
        }
        out
    }

    fn random_path(rng: &mut Rng) -> String {
        let len = rng.below(6);
        let mut out = String::new();
        for _ in 0..len {
            out.push('/');
            out.push_str(if rng.below(6) == 0 {
                "other"
            } else {
                rng.pick(LITERALS)
            });
        }
        if out.is_empty() || rng.below(6) == 0 {
            out.push('/');
        }
        out
    }

    fn random_router(rng: &mut Rng, routes: usize) -> Router {
        let records: Vec<RouteRecord> = (0..routes)
            .map(|i| RouteRecord {
                // Some routes name functions that are not deployed.
                function: format!("f{}", rng.below(routes.max(1) + 2)),
                method: rng.pick(METHODS).into(),
                path: random_template(rng),
                shape: if i % 2 == 0 {
                    RouteShape::Http
                } else {
                    RouteShape::HttpApi
                },
                stage_routing: StageRouting::None,
            })
            .collect();
        Router::new(&records, (0..routes).map(|i| info(&format!("f{i}"))), None)
    }

    #[test]
    fn trie_agrees_with_the_linear_scan() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut compared = 0;
        let mut matched = 0;
        // Many small tables (where ties and backtracking are common) and a
        // few large ones.
        for round in 0..300 {
            let size = if round % 100 == 99 {
                3000
            } else {
                1 + rng.below(40)
            };
            let r = random_router(&mut rng, size);
            for _ in 0..40 {
                let path = random_path(&mut rng);
                let method = rng.pick(&["GET", "POST", "HEAD", "PUT", "DELETE", "ANY"]);
                let want = linear_lookup(&r, method, &path);
                let got = r.lookup(method, &path, None);
                assert_eq!(got, want, "round {round}: {method} {path}");
                compared += 1;
                matched += usize::from(got.is_some());
            }
        }
        // The generator must exercise both outcomes to mean anything.
        assert!(
            matched > compared / 4 && matched < compared,
            "{matched}/{compared}"
        );
    }

    #[test]
    fn ten_thousand_routes_resolve_in_a_few_steps() {
        let mut records: Vec<RouteRecord> = (0..10_000)
            .map(|i| route(&format!("f{i}"), "GET", &format!("/f{i}")))
            .collect();
        records.extend(
            (0..1_000).map(|i| route(&format!("f{i}"), "ANY", &format!("/api/v{i}/{{id}}"))),
        );
        records.push(route("f0", "ANY", "/{proxy+}"));
        let r = Router::new(&records, (0..10_000).map(|i| info(&format!("f{i}"))), None);
        assert_eq!(r.len(), 11_001);
        let visits = |method: &str, path: &str| {
            let segments: Vec<&str> = split(path).collect();
            let mut n = 0;
            let found = r.trie.find(method, &segments, &mut n);
            (found.map(|i| r.routes[i].template.as_str()), n)
        };
        // One node per path segment plus the root, whatever the table size.
        assert_eq!(visits("GET", "/f9999"), (Some("/f9999"), 2));
        assert_eq!(visits("POST", "/api/v999/7"), (Some("/api/v999/{id}"), 4));
        assert_eq!(visits("GET", "/nope/a/b"), (Some("/{proxy+}"), 1));
        assert_eq!(visits("GET", "/f9999/more"), (Some("/{proxy+}"), 2));
        assert_eq!(
            r.lookup("GET", "/f9999", None).unwrap().function.name,
            "f9999"
        );
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

    fn staged(function: &str, path: &str, routing: StageRouting) -> RouteRecord {
        RouteRecord {
            stage_routing: routing,
            ..route(function, "ANY", path)
        }
    }

    fn on_stage(name: &str, stage: &str) -> FunctionInfo {
        FunctionInfo {
            stage: stage.into(),
            ..info(name)
        }
    }

    #[test]
    fn prefix_routes_sit_under_their_stage() {
        let r = Router::new(
            &[
                staged("dev-api", "/users/{id}", StageRouting::Prefix),
                staged("prod-api", "/users/{id}", StageRouting::Prefix),
                staged("prod-site", "/{proxy+}", StageRouting::Prefix),
                staged("plain", "/{proxy+}", StageRouting::None),
            ],
            [
                on_stage("dev-api", "dev"),
                on_stage("prod-api", "prod"),
                on_stage("prod-site", "prod"),
                on_stage("plain", "dev"),
            ],
            None,
        );
        let got = |path: &str| {
            let m = r.lookup("GET", path, None).expect(path);
            (
                m.function.name.clone(),
                m.template,
                m.params,
                m.stage_prefix,
            )
        };
        assert_eq!(
            got("/dev/users/7"),
            (
                "dev-api".into(),
                Some("/users/{id}"),
                vec![("id", "7".into())],
                Some("dev")
            )
        );
        assert_eq!(got("/prod/users/7").0, "prod-api");
        assert_eq!(
            got("/prod"),
            (
                "prod-site".into(),
                Some("/{proxy+}"),
                vec![("proxy", String::new())],
                Some("prod")
            )
        );
        assert_eq!(got("/dev/other").0, "plain");
        assert_eq!(got("/users/7").3, None);
    }

    #[test]
    fn host_routes_answer_on_their_stage_host_first() {
        let r = Router::new(
            &[
                staged("dev-web", "/{proxy+}", StageRouting::Host),
                staged("prod-web", "/{proxy+}", StageRouting::Host),
                staged("plain", "/plain", StageRouting::None),
            ],
            [
                on_stage("dev-web", "dev"),
                on_stage("prod-web", "prod"),
                on_stage("plain", "dev"),
            ],
            Some("fn.test".into()),
        );
        let got = |path: &str, host: &str| {
            r.lookup("GET", path, Some(host))
                .map(|m| m.function.name.clone())
        };
        assert_eq!(got("/x", "dev.fn.test:8080").as_deref(), Some("dev-web"));
        assert_eq!(got("/x", "PROD.fn.test").as_deref(), Some("prod-web"));
        // Routes for any host still answer on a stage host; stage routes
        // answer nowhere else.
        assert_eq!(got("/plain", "dev.fn.test").as_deref(), Some("dev-web"));
        assert_eq!(got("/plain", "qa.fn.test").as_deref(), Some("plain"));
        assert_eq!(got("/x", "localhost"), None);
    }

    #[test]
    fn a_weighted_alias_picks_the_canary_below_its_weight() {
        let alias = AliasTarget {
            version: 1,
            canary: Some(Canary {
                version: 2,
                weight: 0.3,
            }),
        };
        assert_eq!(alias.pick(0.0), 2);
        assert_eq!(alias.pick(0.29), 2);
        assert_eq!(alias.pick(0.3), 1);
        assert_eq!(alias.pick(0.99), 1);
        let plain = AliasTarget {
            version: 4,
            canary: None,
        };
        assert_eq!(plain.pick(0.0), 4);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A template of up to three segments; a greedy one only last.
        fn template() -> impl Strategy<Value = String> {
            let segment = prop_oneof![
                Just("a".to_string()),
                Just("b".to_string()),
                Just("{x}".to_string()),
            ];
            (
                proptest::collection::vec(segment, 0..3),
                proptest::bool::ANY,
            )
                .prop_map(|(mut segments, greedy)| {
                    if greedy {
                        segments.push("{p+}".to_string());
                    }
                    format!("/{}", segments.join("/"))
                })
        }

        fn table() -> impl Strategy<Value = Vec<RouteRecord>> {
            let method = prop_oneof![Just("GET"), Just("POST"), Just("ANY")];
            proptest::collection::vec((method, template()), 0..8).prop_map(|routes| {
                routes
                    .into_iter()
                    .enumerate()
                    .map(|(i, (method, path))| route(&format!("f{i}"), method, &path))
                    .collect()
            })
        }

        fn request_path() -> impl Strategy<Value = String> {
            let segment = prop_oneof![Just("a"), Just("b"), Just("c")];
            proptest::collection::vec(segment, 0..4).prop_map(|s| format!("/{}", s.join("/")))
        }

        /// The answer by definition: the first route in precedence order
        /// whose method and segments match.
        fn first_match<'r>(router: &'r Router, method: &str, path: &str) -> Option<&'r Route> {
            let segments: Vec<&str> = split(path).collect();
            router.routes.iter().find(|r| {
                let method_fits = match r.method.as_deref() {
                    None => true,
                    Some(m) => m == method || (method == "HEAD" && m == "GET"),
                };
                method_fits && match_segments(&r.segments, &segments).is_some()
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// The trie is an index, not a second set of rules: it picks what
            /// a scan of the precedence order picks, with the same params.
            #[test]
            fn trie_agrees_with_the_precedence_order(
                routes in table(),
                method in prop_oneof![Just("GET"), Just("POST"), Just("HEAD"), Just("PUT")],
                path in request_path(),
            ) {
                let names: Vec<String> = routes.iter().map(|r| r.function.clone()).collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let router = Router::new(&routes, infos(&names), None);
                let found = router.lookup(method, &path, None);
                let expected = first_match(&router, method, &path);
                prop_assert_eq!(
                    found.as_ref().map(|m| m.function.name.as_str()),
                    expected.map(|r| r.function.as_str()),
                    "{} {} in {:?}", method, path, routes
                );
                if let (Some(found), Some(expected)) = (found, expected) {
                    let segments: Vec<&str> = split(&path).collect();
                    prop_assert_eq!(Some(found.params), match_segments(&expected.segments, &segments));
                }
            }
        }
    }
}
