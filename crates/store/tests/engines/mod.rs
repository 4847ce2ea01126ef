//! The two engines a store test runs on, behind one fixture.

// Shared by several test binaries, each using part of it.
#![allow(dead_code)]

use std::path::Path;

use rouse_store::Store;

/// A data dir and, for PostgreSQL, a database of its own: opening it again
/// reopens the same store.
pub(crate) struct Engine {
    dir: tempfile::TempDir,
    pg: Option<rouse_testpg::Database>,
}

impl Engine {
    pub(crate) fn sqlite() -> Engine {
        Engine {
            dir: tempfile::tempdir().unwrap(),
            pg: None,
        }
    }

    /// `None` (the test is skipped) without PostgreSQL on the machine.
    pub(crate) fn postgres() -> Option<Engine> {
        Some(Engine {
            dir: tempfile::tempdir().unwrap(),
            pg: Some(rouse_testpg::database()?),
        })
    }

    pub(crate) fn is_sqlite(&self) -> bool {
        self.pg.is_none()
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) async fn open(&self) -> Store {
        match &self.pg {
            None => Store::open(self.dir()).unwrap(),
            Some(db) => Store::open_postgres(self.dir(), &db.url).await.unwrap(),
        }
    }

    /// Runs SQL behind the store's back (to corrupt or count rows); the
    /// first column of the first row, as text.
    pub(crate) fn sql(&self, sql: &str) -> String {
        match &self.pg {
            Some(db) => db.psql(sql).unwrap().trim().to_string(),
            None => {
                let conn = rusqlite::Connection::open(self.dir().join("rouse.db")).unwrap();
                let mut stmt = conn.prepare(sql).unwrap();
                let mut rows = stmt.query([]).unwrap();
                match rows.next().unwrap() {
                    Some(row) => match row.get_ref(0).unwrap() {
                        rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into(),
                        other => format!("{other:?}"),
                    },
                    None => String::new(),
                }
            }
        }
    }
}

/// For each `async fn NAME(e: Engine)`: `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::engines::Engine::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(engine) = $crate::engines::Engine::postgres() else {
                        return;
                    };
                    super::$name(engine).await
                }
            )*
        }
    };
}
