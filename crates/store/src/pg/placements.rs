//! The `placements` table: which nodes a function's requests go to.
//!
//! One row per deployed function (a trigger on `functions` adds it, the
//! foreign key removes it); `nodes` NULL or empty means automatic
//! (rendezvous hashing over live nodes, `crate::placement`). Any change to
//! the table, by `rouse fn place` or by hand with psql, bumps `generation`
//! and notifies `rouse_changes` in the same statement (a trigger), so every
//! node picks it up as it picks up a deploy.

use super::Postgres;
use crate::StoreError;

pub(crate) const MIGRATION: &str = "
    ALTER TABLE nodes ADD COLUMN internal TEXT NOT NULL DEFAULT '';
    ALTER TABLE nodes ADD COLUMN draining BOOLEAN NOT NULL DEFAULT FALSE;
    CREATE TABLE placements (
        function TEXT PRIMARY KEY REFERENCES functions (name) ON DELETE CASCADE,
        nodes    TEXT[]
    );
    INSERT INTO placements (function) SELECT name FROM functions;
    CREATE FUNCTION rouse_placement_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO placements (function) VALUES (NEW.name) ON CONFLICT DO NOTHING;
        RETURN NULL;
    END $$;
    CREATE TRIGGER functions_placement AFTER INSERT ON functions
        FOR EACH ROW EXECUTE FUNCTION rouse_placement_row();
    CREATE FUNCTION rouse_placements_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE generation SET value = value + 1;
        PERFORM pg_notify('rouse_changes', '');
        RETURN NULL;
    END $$;
    CREATE TRIGGER placements_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON placements
        FOR EACH STATEMENT EXECUTE FUNCTION rouse_placements_changed();
";

impl Postgres {
    /// Functions with pinned nodes (automatic ones are left out).
    pub(crate) async fn placements(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT function, nodes FROM placements
                 WHERE nodes IS NOT NULL AND cardinality(nodes) > 0 ORDER BY function",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// `false` when the function is not deployed.
    pub(crate) async fn set_placement(
        &self,
        function: &str,
        nodes: Option<&[String]>,
    ) -> Result<bool, StoreError> {
        let nodes: Option<Vec<String>> = nodes.map(<[String]>::to_vec);
        let updated = self
            .client()
            .await?
            .execute(
                "UPDATE placements SET nodes = $2 WHERE function = $1",
                &[&function, &nodes],
            )
            .await?;
        Ok(updated == 1)
    }

    /// `false` when no node has that name.
    pub(crate) async fn set_draining(
        &self,
        node: &str,
        draining: bool,
    ) -> Result<bool, StoreError> {
        let updated = self
            .client()
            .await?
            .execute(
                "UPDATE nodes SET draining = $2 WHERE name = $1",
                &[&node, &draining],
            )
            .await?;
        Ok(updated == 1)
    }
}
