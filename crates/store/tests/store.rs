//! The CMDB and artifact store against real engines: every test runs on a
//! SQLite file and on a private PostgreSQL (skipped, saying so, when
//! PostgreSQL is not installed).

mod engines;

use std::fs;
use std::path::Path;

use engines::Engine;

use rouse_manifest::{
    DeploySpec, Event, FunctionKind, FunctionSpec, HttpEvent, LambdaSpec, Scaling, StageRouting,
};
use rouse_store::{archive, Canary, RouteRecord, RouteShape, Store, StoreError};

fn function(service: &str, stage: &str, short: &str, events: Vec<Event>) -> FunctionSpec {
    FunctionSpec {
        name: format!("{service}-{stage}-{short}"),
        short_name: short.to_string(),
        kind: FunctionKind::Lambda(LambdaSpec {
            runtime: "python3.12".into(),
            handler: "app.handler".into(),
        }),
        environment: [("LOG_LEVEL".to_string(), "info".to_string())].into(),
        memory_size: 128,
        timeout_secs: 3.0,
        concurrency: 1,
        scaling: Scaling::default(),
        events,
        stage_routing: StageRouting::None,
        async_invoke: Default::default(),
    }
}

fn http(method: &str, path: &str) -> Event {
    Event::Http(HttpEvent {
        method: method.into(),
        path: path.into(),
        policy: Default::default(),
    })
}

fn http_api(method: &str, path: &str) -> Event {
    Event::HttpApi(HttpEvent {
        method: method.into(),
        path: path.into(),
        policy: Default::default(),
    })
}

fn spec(service: &str, stage: &str, functions: Vec<FunctionSpec>) -> DeploySpec {
    DeploySpec {
        service: service.into(),
        stage: stage.into(),
        functions,
    }
}

/// Packs a one-file project so deploys have a real artifact to point at.
async fn artifact(store: &Store, content: &str) -> String {
    let project = tempfile::tempdir().unwrap();
    fs::write(project.path().join("app.py"), content).unwrap();
    let bytes = archive::pack_dir(project.path(), &[], &mut |_| {}).unwrap();
    store
        .put_artifact(std::io::Cursor::new(bytes))
        .await
        .unwrap()
}

fn shop(events_site: Vec<Event>) -> DeploySpec {
    spec(
        "shop",
        "dev",
        vec![
            function("shop", "dev", "site", events_site),
            function(
                "shop",
                "dev",
                "thumbs",
                vec![
                    http_api("get", "/thumbs/{id}"),
                    Event::Schedule {
                        expression: "rate(5 minutes)".into(),
                    },
                ],
            ),
        ],
    )
}

/// Everything a failed deploy must leave alone.
async fn snapshot(store: &Store) -> (Vec<rouse_store::FunctionRecord>, Vec<RouteRecord>) {
    (
        store.list_functions().await.unwrap(),
        store.routes().await.unwrap(),
    )
}

async fn deploying_twice_creates_versions_1_and_2_and_moves_current(e: Engine) {
    let store = e.open().await;
    let first = artifact(&store, "v1").await;
    let second = artifact(&store, "v2").await;
    assert_ne!(first, second);

    let records = store
        .deploy(&shop(vec![http("any", "/{proxy+}")]), &first)
        .await
        .unwrap();
    assert_eq!(records.len(), 2);
    assert!(records
        .iter()
        .all(|r| r.version == 1 && r.artifact == first));

    let records = store
        .deploy(&shop(vec![http("any", "/{proxy+}")]), &second)
        .await
        .unwrap();
    assert!(records
        .iter()
        .all(|r| r.version == 2 && r.artifact == second));

    let site = store.get_function("shop-dev-site").await.unwrap().unwrap();
    assert_eq!(site.version, 2);
    assert_eq!(site.artifact, second);
    assert_eq!(site.service, "shop");
    assert_eq!(site.stage, "dev");
    assert_eq!(site.spec.short_name, "site");
    assert!(site.updated_at >= site.created_at);
    assert_eq!(store.get_function("nope").await.unwrap(), None);
}

async fn routes_map_event_shapes_and_skip_schedules(e: Engine) {
    let store = e.open().await;
    let sha = artifact(&store, "x").await;
    store
        .deploy(&shop(vec![http("any", "/{proxy+}")]), &sha)
        .await
        .unwrap();

    let routes = store.routes().await.unwrap();
    assert_eq!(
        routes,
        vec![
            RouteRecord {
                function: "shop-dev-thumbs".into(),
                method: "GET".into(),
                path: "/thumbs/{id}".into(),
                shape: RouteShape::HttpApi,
                stage_routing: StageRouting::None,
            },
            RouteRecord {
                function: "shop-dev-site".into(),
                method: "ANY".into(),
                path: "/{proxy+}".into(),
                shape: RouteShape::Http,
                stage_routing: StageRouting::None,
            },
        ]
    );
}

async fn reopening_the_store_keeps_functions_routes_and_settings(e: Engine) {
    let (functions, routes) = {
        let store = e.open().await;
        let sha = artifact(&store, "x").await;
        store
            .deploy(&shop(vec![http("get", "/")]), &sha)
            .await
            .unwrap();
        store.set_setting("admin_token", "s3cret").await.unwrap();
        snapshot(&store).await
    };
    assert_eq!(functions.len(), 2);

    let store = e.open().await;
    assert_eq!(snapshot(&store).await, (functions.clone(), routes));
    assert_eq!(
        store.get_setting("admin_token").await.unwrap().as_deref(),
        Some("s3cret")
    );
    assert!(store.has_artifact(&functions[0].artifact).await.unwrap());
    assert_eq!(store.data_dir(), e.dir());

    // And the next deploy continues the version count.
    let records = store
        .deploy(&shop(vec![http("get", "/")]), &functions[0].artifact)
        .await
        .unwrap();
    assert!(records.iter().all(|r| r.version == 2));
}

async fn a_function_dropped_from_the_spec_disappears_with_its_routes_and_versions(e: Engine) {
    let store = e.open().await;
    let sha = artifact(&store, "x").await;
    store
        .deploy(&shop(vec![http("get", "/")]), &sha)
        .await
        .unwrap();
    // Another stage of the same service must be untouched.
    store
        .deploy(
            &spec(
                "shop",
                "prod",
                vec![function(
                    "shop",
                    "prod",
                    "thumbs",
                    vec![http_api("get", "/p")],
                )],
            ),
            &sha,
        )
        .await
        .unwrap();

    let only_site = spec(
        "shop",
        "dev",
        vec![function("shop", "dev", "site", vec![http("get", "/")])],
    );
    let records = store.deploy(&only_site, &sha).await.unwrap();
    assert_eq!(records.len(), 1);

    let names: Vec<_> = store
        .list_functions()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["shop-dev-site", "shop-prod-thumbs"]);
    let routed: Vec<_> = store
        .routes()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.function)
        .collect();
    assert_eq!(routed, ["shop-dev-site", "shop-prod-thumbs"]);

    // Its versions went too: deployed again, it starts over at 1.
    let records = store
        .deploy(&shop(vec![http("get", "/")]), &sha)
        .await
        .unwrap();
    let thumbs = records
        .iter()
        .find(|r| r.name == "shop-dev-thumbs")
        .unwrap();
    assert_eq!(thumbs.version, 1);
}

async fn a_route_conflict_between_services_changes_nothing(e: Engine) {
    let store = e.open().await;
    let sha = artifact(&store, "x").await;
    store
        .deploy(&shop(vec![http("get", "/")]), &sha)
        .await
        .unwrap();
    store
        .deploy(
            &spec(
                "blog",
                "dev",
                vec![function("blog", "dev", "old", vec![http("get", "/blog")])],
            ),
            &sha,
        )
        .await
        .unwrap();
    let before = snapshot(&store).await;

    // The blog redeploy would drop `old`, add `new`, and take a shop route
    // (same template, other parameter name): all or nothing.
    let clash = spec(
        "blog",
        "dev",
        vec![function(
            "blog",
            "dev",
            "new",
            vec![http("get", "/blog"), http_api("any", "/thumbs/{thumb}")],
        )],
    );
    match store.deploy(&clash, &sha).await {
        Err(StoreError::RouteConflict {
            method,
            path,
            owner,
        }) => {
            assert_eq!(method, "ANY");
            assert_eq!(path, "/thumbs/{thumb}");
            assert_eq!(owner, "shop-dev-thumbs");
        }
        other => panic!("expected a route conflict, got {other:?}"),
    }
    assert_eq!(snapshot(&store).await, before);
    assert_eq!(store.get_function("blog-dev-new").await.unwrap(), None);
}

async fn different_methods_on_one_path_do_not_conflict(e: Engine) {
    let store = e.open().await;
    let sha = artifact(&store, "x").await;
    let a = spec(
        "a",
        "dev",
        vec![function("a", "dev", "f", vec![http("get", "/x")])],
    );
    let b = spec(
        "b",
        "dev",
        vec![function("b", "dev", "f", vec![http("post", "/x")])],
    );
    store.deploy(&a, &sha).await.unwrap();
    store.deploy(&b, &sha).await.unwrap();
    assert_eq!(store.routes().await.unwrap().len(), 2);

    let c = spec(
        "c",
        "dev",
        vec![function("c", "dev", "f", vec![http("any", "/x")])],
    );
    assert!(matches!(
        store.deploy(&c, &sha).await,
        Err(StoreError::RouteConflict { .. })
    ));
}

async fn two_functions_of_one_spec_claiming_a_route_conflict(e: Engine) {
    let store = e.open().await;
    let sha = artifact(&store, "x").await;
    let both = spec(
        "shop",
        "dev",
        vec![
            function("shop", "dev", "a", vec![http("get", "/same")]),
            function("shop", "dev", "b", vec![http_api("GET", "/same")]),
        ],
    );
    match store.deploy(&both, &sha).await {
        Err(StoreError::RouteConflict { owner, path, .. }) => {
            assert_eq!(owner, "shop-dev-a");
            assert_eq!(path, "/same");
        }
        other => panic!("expected a route conflict, got {other:?}"),
    }
    assert!(store.list_functions().await.unwrap().is_empty());

    // The same event listed twice by one function is not a conflict.
    let twice = spec(
        "shop",
        "dev",
        vec![function(
            "shop",
            "dev",
            "a",
            vec![http("get", "/same"), http("get", "/same")],
        )],
    );
    store.deploy(&twice, &sha).await.unwrap();
    assert_eq!(store.routes().await.unwrap().len(), 1);
}

async fn function_names_are_owned_by_one_service_and_stage(e: Engine) {
    let store = e.open().await;
    let sha = artifact(&store, "x").await;
    let mut f = function("a", "dev", "f", vec![]);
    store
        .deploy(&spec("a", "dev", vec![f.clone()]), &sha)
        .await
        .unwrap();

    f.name = "a-dev-f".into();
    let err = store
        .deploy(&spec("other", "dev", vec![f.clone()]), &sha)
        .await;
    assert!(matches!(err, Err(StoreError::FunctionConflict { ref service, .. }) if service == "a"));

    let dup = spec("a", "dev", vec![f.clone(), f]);
    assert!(matches!(
        store.deploy(&dup, &sha).await,
        Err(StoreError::InvalidSpec(_))
    ));
    assert_eq!(
        store
            .get_function("a-dev-f")
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
}

async fn deploying_an_unknown_artifact_is_refused(e: Engine) {
    let store = e.open().await;
    let missing = "0".repeat(64);
    assert!(matches!(
        store.deploy(&shop(vec![]), &missing).await,
        Err(StoreError::UnknownArtifact(_))
    ));
    assert!(matches!(
        store.deploy(&shop(vec![]), "../../etc/passwd").await,
        Err(StoreError::UnknownArtifact(_))
    ));
    assert!(store.list_functions().await.unwrap().is_empty());
}

async fn remove_function_takes_versions_and_routes(e: Engine) {
    let store = e.open().await;
    let sha = artifact(&store, "x").await;
    store
        .deploy(&shop(vec![http("get", "/")]), &sha)
        .await
        .unwrap();

    assert!(store.remove_function("shop-dev-site").await.unwrap());
    assert!(!store.remove_function("shop-dev-site").await.unwrap());
    assert_eq!(store.get_function("shop-dev-site").await.unwrap(), None);
    assert!(store
        .routes()
        .await
        .unwrap()
        .iter()
        .all(|r| r.function != "shop-dev-site"));

    let versions = e.sql("SELECT COUNT(*) FROM versions WHERE function = 'shop-dev-site'");
    assert_eq!(versions, "0");
}

async fn settings_are_upserted(e: Engine) {
    let store = e.open().await;
    assert_eq!(store.get_setting("k").await.unwrap(), None);
    store.set_setting("k", "1").await.unwrap();
    store.set_setting("k", "2").await.unwrap();
    assert_eq!(store.get_setting("k").await.unwrap().as_deref(), Some("2"));
}

async fn a_spec_that_does_not_parse_is_reported_as_corrupt_naming_the_function(e: Engine) {
    let store = e.open().await;
    let sha = artifact(&store, "x").await;
    store.deploy(&shop(vec![]), &sha).await.unwrap();

    e.sql("UPDATE versions SET spec_json = '{\"name\": 1' WHERE function = 'shop-dev-site'");

    match store.get_function("shop-dev-site").await {
        Err(StoreError::Corrupt(message)) => {
            assert!(message.contains("shop-dev-site"), "{message}")
        }
        other => panic!("expected corrupt, got {other:?}"),
    }
    assert!(matches!(
        store.list_functions().await,
        Err(StoreError::Corrupt(_))
    ));
    // The other function still reads fine.
    assert!(store
        .get_function("shop-dev-thumbs")
        .await
        .unwrap()
        .is_some());
}

fn stored_archives(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(data_dir.join("artifacts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn the_same_bytes_are_stored_once(e: Engine) {
    let store = e.open().await;
    let project = tempfile::tempdir().unwrap();
    fs::write(project.path().join("app.py"), "print('hi')").unwrap();
    let bytes = archive::pack_dir(project.path(), &[], &mut |_| {}).unwrap();

    let first = store
        .put_artifact(std::io::Cursor::new(bytes.clone()))
        .await
        .unwrap();
    let second = store
        .put_artifact(std::io::Cursor::new(bytes.clone()))
        .await
        .unwrap();
    assert_eq!(first, second);
    assert!(rouse_store::is_sha256_hex(&first));
    assert_eq!(stored_archives(e.dir()), [format!("{first}.tar.gz")]);
    assert!(store.has_artifact(&first).await.unwrap());
    assert!(!store.has_artifact(&"f".repeat(64)).await.unwrap());
    assert_eq!(
        fs::read(e.dir().join(format!("artifacts/{first}.tar.gz"))).unwrap(),
        bytes
    );
}

async fn an_unsafe_upload_is_refused_and_leaves_nothing_behind(e: Engine) {
    let store = e.open().await;

    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..7].copy_from_slice(b"../evil");
    header.set_size(0);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append(&header, std::io::empty()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &builder.into_inner().unwrap()).unwrap();
    let evil = gz.finish().unwrap();

    assert!(matches!(
        store.put_artifact(std::io::Cursor::new(evil)).await,
        Err(StoreError::Archive(archive::ArchiveError::Unsafe { .. }))
    ));
    assert!(matches!(
        store.put_artifact(&b"not a tarball"[..]).await,
        Err(StoreError::Archive(archive::ArchiveError::Malformed(_)))
    ));
    assert!(stored_archives(e.dir()).is_empty());
}

async fn code_dir_extracts_once_even_when_raced(e: Engine) {
    let store = e.open().await;
    let sha = artifact(&store, "print('hi')").await;

    // Concurrent calls: each extraction runs on a blocking thread of its own.
    let dirs: Vec<_> = futures_util::future::join_all((0..8).map(|_| store.code_dir(&sha)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(dirs.iter().all(|d| d == &e.dir().join("code").join(&sha)));
    assert_eq!(
        fs::read_to_string(dirs[0].join("app.py")).unwrap(),
        "print('hi')"
    );
    // No temp dirs left over from the losers.
    let entries: Vec<_> = fs::read_dir(e.dir().join("code"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, [std::ffi::OsString::from(&sha)]);

    assert!(matches!(
        store.code_dir(&"e".repeat(64)).await,
        Err(StoreError::UnknownArtifact(_))
    ));
    assert!(matches!(
        store.code_dir("..").await,
        Err(StoreError::UnknownArtifact(_))
    ));
}

#[test]
fn the_store_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

async fn update_spec_and_rollback_make_new_versions_and_keep_history(e: Engine) {
    let store = e.open().await;
    let artifact = artifact(&store, "v1").await;
    let mut spec = spec(
        "svc",
        "dev",
        vec![function("svc", "dev", "site", vec![http("GET", "/site")])],
    );
    store.deploy(&spec, &artifact).await.unwrap();

    let mut function = spec.functions[0].clone();
    function.environment.insert("MODE".into(), "blue".into());
    let updated = store.update_spec(&function).await.unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.spec.environment["MODE"], "blue");
    assert_eq!(
        store.routes().await.unwrap().len(),
        1,
        "routes survive an update"
    );

    let back = store.rollback(&function.name, None).await.unwrap();
    assert_eq!(back.version, 3, "a rollback is a new version");
    assert!(!back.spec.environment.contains_key("MODE"));
    let again = store.rollback(&function.name, Some(2)).await.unwrap();
    assert_eq!(again.spec.environment["MODE"], "blue");
    let versions: Vec<u32> = store
        .versions(&function.name)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
    assert!(store.rollback(&function.name, Some(99)).await.is_err());
    spec.functions[0].name = "nope".into();
    assert!(store.update_spec(&spec.functions[0]).await.is_err());
}

/// One stage of the `site` service with a catch-all route, routed `routing`.
fn staged(stage: &str, routing: StageRouting) -> DeploySpec {
    let mut f = function("site", stage, "web", vec![http("any", "/{proxy+}")]);
    f.stage_routing = routing;
    spec("site", stage, vec![f])
}

async fn stages_share_routes_only_when_routed_apart(e: Engine) {
    let store = e.open().await;
    let sha = artifact(&store, "x").await;
    store
        .deploy(&staged("dev", StageRouting::None), &sha)
        .await
        .unwrap();
    match store
        .deploy(&staged("prod", StageRouting::None), &sha)
        .await
    {
        Err(err @ StoreError::StageRouteConflict { .. }) => {
            let message = err.to_string();
            assert!(message.contains("site-dev-web"), "{message}");
            assert!(message.contains("stageRouting: prefix"), "{message}");
        }
        other => panic!("expected a stage route conflict, got {other:?}"),
    }
    // Under /prod, or on prod.DOMAIN, the same template is another route.
    store
        .deploy(&staged("prod", StageRouting::Prefix), &sha)
        .await
        .unwrap();
    store
        .deploy(&staged("test", StageRouting::Host), &sha)
        .await
        .unwrap();
    store
        .deploy(&staged("qa", StageRouting::Host), &sha)
        .await
        .unwrap();
    let routings: Vec<StageRouting> = store
        .routes()
        .await
        .unwrap()
        .iter()
        .map(|r| r.stage_routing)
        .collect();
    assert_eq!(routings.len(), 4);
    assert!(routings.contains(&StageRouting::Prefix));

    // `/prod/{rest+}` of another service is the prefixed catch-all.
    let other = spec(
        "other",
        "dev",
        vec![function(
            "other",
            "dev",
            "f",
            vec![http("get", "/prod/{rest+}/")],
        )],
    );
    assert!(matches!(
        store.deploy(&other, &sha).await,
        Err(StoreError::RouteConflict { owner, .. }) if owner == "site-prod-web"
    ));
}

async fn aliases_point_at_existing_versions_and_go_with_their_function(e: Engine) {
    let sha;
    {
        let store = e.open().await;
        sha = artifact(&store, "x").await;
        store
            .deploy(&staged("dev", StageRouting::None), &sha)
            .await
            .unwrap();
        store
            .deploy(&staged("dev", StageRouting::None), &sha)
            .await
            .unwrap();
        let canary = Some(Canary {
            version: 2,
            weight: 0.25,
        });
        let set = store
            .set_alias("site-dev-web", "live", 1, canary)
            .await
            .unwrap();
        assert_eq!((set.version, set.canary), (1, canary));
        store
            .set_alias("site-dev-web", "stable", 2, None)
            .await
            .unwrap();
        store
            .set_alias("site-dev-web", "stable", 1, None)
            .await
            .unwrap();
    }
    // Reopened: aliases are in the database.
    let store = e.open().await;
    let aliases = store.aliases("site-dev-web").await.unwrap();
    let summary: Vec<(&str, u32, Option<Canary>)> = aliases
        .iter()
        .map(|a| (a.name.as_str(), a.version, a.canary))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "live",
                1,
                Some(Canary {
                    version: 2,
                    weight: 0.25
                })
            ),
            ("stable", 1, None)
        ]
    );

    let refused = [
        store.set_alias("site-dev-web", "live", 3, None).await,
        store
            .set_alias(
                "site-dev-web",
                "live",
                1,
                Some(Canary {
                    version: 9,
                    weight: 0.5,
                }),
            )
            .await,
        store
            .set_alias(
                "site-dev-web",
                "live",
                1,
                Some(Canary {
                    version: 2,
                    weight: 1.5,
                }),
            )
            .await,
        store.set_alias("site-dev-web", "42", 1, None).await,
        store.set_alias("site-dev-web", "$LATEST", 1, None).await,
        store.set_alias("nope", "live", 1, None).await,
    ];
    let kinds: Vec<&str> = refused
        .iter()
        .map(|r| match r {
            Err(StoreError::UnknownVersion { .. }) => "version",
            Err(StoreError::InvalidAlias(_)) => "invalid",
            Err(StoreError::UnknownFunction(_)) => "function",
            other => panic!("expected a refusal, got {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        ["version", "version", "invalid", "invalid", "invalid", "function"]
    );

    assert!(store.remove_alias("site-dev-web", "stable").await.unwrap());
    assert!(!store.remove_alias("site-dev-web", "stable").await.unwrap());
    assert!(store.remove_function("site-dev-web").await.unwrap());
    assert!(store.all_aliases().await.unwrap().is_empty());
}

async fn access_keys_keep_sealed_secrets_across_reopen(e: Engine) {
    let store = e.open().await;
    let made = store.create_access_key("ci", 1_000).await.unwrap();
    assert!(made.record.id.starts_with("AKIA") && made.record.id.len() == 20);
    assert_eq!(made.secret.len(), 40);
    let other = store.create_access_key("", 1_001).await.unwrap();

    // The secret is not in the database as text.
    drop(store);
    let stored = e.sql("SELECT COUNT(*) FROM access_keys WHERE sealed_secret IS NOT NULL");
    assert_eq!(stored, "2");
    if e.is_sqlite() {
        let db = fs::read(e.dir().join("rouse.db")).unwrap();
        let wal = fs::read(e.dir().join("rouse.db-wal")).unwrap_or_default();
        for bytes in [&db, &wal] {
            assert!(!bytes.windows(40).any(|w| w == made.secret.as_bytes()));
        }
    } else {
        let text = e.sql("SELECT string_agg(encode(sealed_secret, 'escape'), '') FROM access_keys");
        assert!(!text.contains(&made.secret));
    }

    let store = e.open().await;
    let listed = store.list_access_keys().await.unwrap();
    assert_eq!(listed, vec![made.record.clone(), other.record.clone()]);
    let found = store
        .access_key_secret(&made.record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.secret.as_str(), found.last_used_at),
        (made.secret.as_str(), None)
    );
    store
        .touch_access_key(&made.record.id, 2_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .access_key_secret(&made.record.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(2_000)
    );
    assert_eq!(
        store
            .access_key_secret("AKIAAAAAAAAAAAAAAAAA")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.access_key_secret("not a key").await.unwrap(), None);

    assert!(store.remove_access_key(&made.record.id).await.unwrap());
    assert!(!store.remove_access_key(&made.record.id).await.unwrap());
    assert_eq!(
        store.access_key_secret(&made.record.id).await.unwrap(),
        None
    );
    assert_eq!(store.list_access_keys().await.unwrap(), vec![other.record]);
}

on_both_engines!(
    deploying_twice_creates_versions_1_and_2_and_moves_current,
    routes_map_event_shapes_and_skip_schedules,
    reopening_the_store_keeps_functions_routes_and_settings,
    a_function_dropped_from_the_spec_disappears_with_its_routes_and_versions,
    a_route_conflict_between_services_changes_nothing,
    different_methods_on_one_path_do_not_conflict,
    two_functions_of_one_spec_claiming_a_route_conflict,
    function_names_are_owned_by_one_service_and_stage,
    deploying_an_unknown_artifact_is_refused,
    remove_function_takes_versions_and_routes,
    settings_are_upserted,
    a_spec_that_does_not_parse_is_reported_as_corrupt_naming_the_function,
    the_same_bytes_are_stored_once,
    an_unsafe_upload_is_refused_and_leaves_nothing_behind,
    code_dir_extracts_once_even_when_raced,
    update_spec_and_rollback_make_new_versions_and_keep_history,
    stages_share_routes_only_when_routed_apart,
    aliases_point_at_existing_versions_and_go_with_their_function,
    access_keys_keep_sealed_secrets_across_reopen,
);
