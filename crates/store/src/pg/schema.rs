//! The PostgreSQL schema: versioned migrations in `schema_version`, applied
//! at start under an advisory lock so nodes starting together run each once.

use deadpool_postgres::Client;

use crate::StoreError;

/// Key of the advisory lock migrations hold ("rouse" in ASCII).
const MIGRATION_LOCK: i64 = 0x0072_6f75_7365;

/// Schema changes, applied in order. Only ever append: a released entry
/// must never change.
const MIGRATIONS: &[&str] = &[
    // 1: the CMDB as SQLite has it after its migration 2, plus what a
    // cluster shares: the change generation, artifacts, nodes and ticks.
    "CREATE TABLE functions (
        id              BIGSERIAL UNIQUE,
        name            TEXT PRIMARY KEY,
        service         TEXT NOT NULL,
        stage           TEXT NOT NULL,
        current_version BIGINT NOT NULL,
        created_at      BIGINT NOT NULL,
        updated_at      BIGINT NOT NULL
    );
    CREATE INDEX functions_by_service ON functions (service, stage);
    CREATE TABLE versions (
        function   TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
        version    BIGINT NOT NULL,
        artifact   TEXT NOT NULL,
        spec_json  TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (function, version)
    );
    CREATE TABLE routes (
        function      TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
        method        TEXT NOT NULL,
        path          TEXT NOT NULL,
        shape         TEXT NOT NULL,
        stage_routing TEXT NOT NULL DEFAULT 'none'
    );
    CREATE INDEX routes_by_function ON routes (function);
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE aliases (
        function       TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
        name           TEXT NOT NULL,
        version        BIGINT NOT NULL,
        canary_version BIGINT,
        canary_weight  DOUBLE PRECISION,
        updated_at     BIGINT NOT NULL,
        PRIMARY KEY (function, name)
    );
    CREATE TABLE generation (
        one   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        value BIGINT NOT NULL
    );
    INSERT INTO generation (value) VALUES (0);
    CREATE TABLE artifacts (
        sha256     TEXT PRIMARY KEY,
        size       BIGINT NOT NULL,
        chunks     INTEGER NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE artifact_chunks (
        sha256 TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        data   BYTEA NOT NULL,
        PRIMARY KEY (sha256, seq)
    );
    CREATE TABLE nodes (
        name         TEXT PRIMARY KEY,
        id           TEXT NOT NULL,
        gateway      TEXT NOT NULL,
        admin        TEXT NOT NULL,
        version      TEXT NOT NULL,
        started_at   BIGINT NOT NULL,
        heartbeat_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE schedule_ticks (
        schedule TEXT NOT NULL,
        tick     BIGINT NOT NULL,
        node     TEXT NOT NULL,
        PRIMARY KEY (schedule, tick)
    );",
    // 2: access keys for the AWS-compatible APIs, secrets sealed (see
    // access_keys.rs), as in SQLite's migration 3.
    "CREATE TABLE access_keys (
        id            TEXT PRIMARY KEY,
        sealed_secret BYTEA NOT NULL,
        description   TEXT NOT NULL,
        created_at    BIGINT NOT NULL,
        last_used_at  BIGINT
    );",
    // 3: the queue of async (`Event`) invocations.
    super::events::MIGRATION,
    // 4: placement (see placements.rs) and what forwarding needs of a node.
    super::placements::MIGRATION,
    // 5: streams, their shards and records, mapping checkpoints and
    // per-shard poller leases.
    super::streams::MIGRATION,
    // 6: queues (SQS-like) and their messages.
    super::queues::MIGRATION,
];

pub(crate) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    // Looked up first: `CREATE TABLE IF NOT EXISTS` would log a notice at
    // every start of every node.
    let exists: Option<String> = tx
        .query_one("SELECT to_regclass('schema_version')::TEXT", &[])
        .await?
        .get(0);
    if exists.is_none() {
        tx.batch_execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            .await?;
    }
    let applied: Option<i32> = tx
        .query_one("SELECT MAX(version) FROM schema_version", &[])
        .await?
        .get(0);
    let applied = usize::try_from(applied.unwrap_or(0)).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "database schema version {applied} is newer than this rouse knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.batch_execute(sql).await?;
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
