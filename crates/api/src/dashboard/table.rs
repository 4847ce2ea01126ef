//! The functions table: which rows a page shows, after filtering and
//! sorting every function. Pure: rows are plain data, so filtering,
//! sorting and paging 10,000 functions is tested (and timed) without a
//! server.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::Serialize;

/// Rows per page when the caller does not say, and the most it may ask for.
pub(crate) const DEFAULT_LIMIT: usize = 50;
pub(crate) const MAX_LIMIT: usize = 500;

/// One function's row, before its routes and aliases are added (they are
/// read for the rows of the page only).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Row {
    pub name: String,
    pub service: String,
    pub stage: String,
    pub kind: &'static str,
    /// The lambda runtime, or `web`.
    pub runtime: String,
    pub version: u32,
    pub starting: u32,
    pub busy: u32,
    pub idle: u32,
    /// Over the window the table covers (the last 5 minutes).
    pub invocations: u64,
    pub requests_per_sec: f64,
    pub errors: u64,
    pub throttles: u64,
    pub cold_starts: u64,
    /// Milliseconds; `None` without requests in the window.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Row {
    fn instances(&self) -> u32 {
        self.starting + self.busy + self.idle
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortKey {
    Name,
    Kind,
    Runtime,
    Version,
    Instances,
    Requests,
    Errors,
    P50,
    P99,
    ColdStarts,
    Throttles,
}

impl SortKey {
    const NAMES: [(&'static str, SortKey); 11] = [
        ("name", SortKey::Name),
        ("kind", SortKey::Kind),
        ("runtime", SortKey::Runtime),
        ("version", SortKey::Version),
        ("instances", SortKey::Instances),
        ("requests", SortKey::Requests),
        ("errors", SortKey::Errors),
        ("p50", SortKey::P50),
        ("p99", SortKey::P99),
        ("coldStarts", SortKey::ColdStarts),
        ("throttles", SortKey::Throttles),
    ];

    fn parse(text: &str) -> Option<SortKey> {
        SortKey::NAMES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, key)| *key)
    }

    fn compare(self, a: &Row, b: &Row) -> Ordering {
        let ms = |x: Option<f64>| x.unwrap_or(-1.0);
        match self {
            SortKey::Name => Ordering::Equal,
            SortKey::Kind => a.kind.cmp(b.kind),
            SortKey::Runtime => a.runtime.cmp(&b.runtime),
            SortKey::Version => a.version.cmp(&b.version),
            SortKey::Instances => a.instances().cmp(&b.instances()),
            SortKey::Requests => a.invocations.cmp(&b.invocations),
            SortKey::Errors => a.errors.cmp(&b.errors),
            SortKey::P50 => ms(a.p50_ms).total_cmp(&ms(b.p50_ms)),
            SortKey::P99 => ms(a.p99_ms).total_cmp(&ms(b.p99_ms)),
            SortKey::ColdStarts => a.cold_starts.cmp(&b.cold_starts),
            SortKey::Throttles => a.throttles.cmp(&b.throttles),
        }
    }
}

/// What one page request asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PageQuery {
    /// Lower-case words every shown row contains (in its name, service,
    /// stage, kind or runtime).
    pub filter: Vec<String>,
    pub sort: SortKey,
    pub descending: bool,
    pub offset: usize,
    pub limit: usize,
}

impl PageQuery {
    /// Reads the query string's `filter`, `sort`, `order`, `offset` and
    /// `limit`, or says which one is wrong.
    pub(crate) fn parse(params: &HashMap<String, String>) -> Result<PageQuery, String> {
        let number = |key: &str, default: usize, max: usize| -> Result<usize, String> {
            match params.get(key) {
                None => Ok(default),
                Some(text) => text
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| {
                        format!("`{key}` must be a whole number up to {max}, found {text:?}")
                    }),
            }
        };
        let sort = match params.get("sort") {
            None => SortKey::Name,
            Some(text) => SortKey::parse(text).ok_or_else(|| {
                let known: Vec<_> = SortKey::NAMES.iter().map(|(n, _)| *n).collect();
                format!("`sort` must be one of {}, found {text:?}", known.join(", "))
            })?,
        };
        let descending = match params.get("order").map(String::as_str) {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(format!("`order` must be asc or desc, found {other:?}")),
        };
        let limit = number("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
        if limit == 0 {
            return Err("`limit` must be at least 1".into());
        }
        Ok(PageQuery {
            filter: params
                .get("filter")
                .map(|f| f.split_whitespace().map(str::to_lowercase).collect())
                .unwrap_or_default(),
            sort,
            descending,
            offset: number("offset", 0, usize::MAX)?,
            limit,
        })
    }
}

fn matches(row: &Row, words: &[String]) -> bool {
    words.iter().all(|word| {
        [&row.name, &row.service, &row.stage, &row.runtime]
            .iter()
            .any(|field| field.to_lowercase().contains(word.as_str()))
            || row.kind.contains(word.as_str())
    })
}

/// The rows of one page and how many rows match the filter. Ties (and
/// the `name` sort) are in name order, so pages never overlap.
pub(crate) fn page(mut rows: Vec<Row>, q: &PageQuery) -> (usize, Vec<Row>) {
    if !q.filter.is_empty() {
        rows.retain(|row| matches(row, &q.filter));
    }
    let total = rows.len();
    rows.sort_by(|a, b| {
        let by_key = q.sort.compare(a, b).then_with(|| a.name.cmp(&b.name));
        if q.descending {
            by_key.reverse()
        } else {
            by_key
        }
    });
    let rows = rows.into_iter().skip(q.offset).take(q.limit).collect();
    (total, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, invocations: u64) -> Row {
        Row {
            name: name.into(),
            service: "shop".into(),
            stage: "dev".into(),
            kind: "web",
            runtime: "web".into(),
            invocations,
            ..Row::default()
        }
    }

    fn query(pairs: &[(&str, &str)]) -> Result<PageQuery, String> {
        PageQuery::parse(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_and_bad_values() {
        let q = query(&[]).unwrap();
        assert_eq!(
            (q.sort, q.descending, q.offset, q.limit),
            (SortKey::Name, false, 0, DEFAULT_LIMIT)
        );
        assert!(query(&[("limit", "0")]).unwrap_err().contains("at least 1"));
        assert!(query(&[("limit", "501")]).unwrap_err().contains("`limit`"));
        assert!(query(&[("offset", "-1")]).unwrap_err().contains("`offset`"));
        assert!(query(&[("sort", "size")])
            .unwrap_err()
            .contains("coldStarts"));
        assert!(query(&[("order", "up")])
            .unwrap_err()
            .contains("asc or desc"));
    }

    #[test]
    fn filters_on_every_word() {
        let mut other = row("thumbs", 0);
        other.kind = "lambda";
        other.runtime = "python3.12".into();
        let rows = vec![row("site", 0), other, row("site-admin", 0)];
        let q = query(&[("filter", "SITE adm")]).unwrap();
        let (total, shown) = page(rows.clone(), &q);
        assert_eq!(total, 1);
        assert_eq!(shown[0].name, "site-admin");
        let (total, shown) = page(rows, &query(&[("filter", "python")]).unwrap());
        assert_eq!((total, shown[0].name.as_str()), (1, "thumbs"));
    }

    #[test]
    fn sorts_with_name_as_tie_break_and_pages() {
        let rows = vec![row("c", 5), row("a", 5), row("b", 9), row("d", 0)];
        let q = query(&[("sort", "requests"), ("order", "desc"), ("limit", "2")]).unwrap();
        let (total, first) = page(rows.clone(), &q);
        assert_eq!(total, 4);
        let names: Vec<_> = first.iter().map(|r| r.name.as_str()).collect();
        // Descending reverses the tie-break too: still one total order.
        assert_eq!(names, ["b", "c"]);
        let q = query(&[
            ("sort", "requests"),
            ("order", "desc"),
            ("limit", "2"),
            ("offset", "2"),
        ])
        .unwrap();
        let names: Vec<_> = page(rows, &q).1.iter().map(|r| r.name.clone()).collect();
        assert_eq!(names, ["a", "d"]);
    }

    #[test]
    fn ten_thousand_rows_sort_and_page() {
        let rows: Vec<_> = (0..10_000)
            .map(|i| row(&format!("fn-{i:05}"), i % 97))
            .collect();
        let q = query(&[
            ("sort", "requests"),
            ("order", "desc"),
            ("filter", "fn-0"),
            ("offset", "100"),
        ])
        .unwrap();
        let (total, page) = page(rows, &q);
        assert_eq!(total, 10_000);
        assert_eq!(page.len(), DEFAULT_LIMIT);
        assert!(page
            .windows(2)
            .all(|w| w[0].invocations >= w[1].invocations));
    }
}
