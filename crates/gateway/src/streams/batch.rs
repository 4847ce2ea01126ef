//! What a stream mapping does with a batch: how an invocation's answer is
//! read (`outcome`), and what follows from it (`decide`: the checkpoint,
//! a retry, a split, giving up). Pure: time is a parameter; indices are
//! positions in the batch as it was read.

use serde_json::Value;

/// A mapping's failure settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    pub max_retries: u32,
    pub max_record_age_ms: Option<i64>,
    pub bisect: bool,
    pub report_item_failures: bool,
}

/// The records `start..end` of the batch, tried `retries` times so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub retries: u32,
}

impl Span {
    pub(crate) fn whole(len: usize) -> Span {
        Span {
            start: 0,
            end: len,
            retries: 0,
        }
    }

    fn len(self) -> usize {
        self.end - self.start
    }
}

/// How one invocation of a span ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    /// The function failed, or could not be run.
    Failed,
    /// It reported these records failed: the first is at this index.
    FailedFrom(usize),
}

/// Why a span was given up (Lambda's `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Condition {
    RetryAttemptsExhausted,
    RecordAgeExceeded,
}

impl Condition {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Condition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Condition::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }
}

/// What to do next. `commit_before`: the checkpoint moves to the record
/// just before this index first (records a partial response reported done).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Every record of the span is processed: checkpoint at its last one.
    Done,
    Retry {
        commit_before: Option<usize>,
        span: Span,
        at_ms: i64,
    },
    /// Each half on its own, first then second (not a retry).
    Split {
        commit_before: Option<usize>,
        first: Span,
        second: Span,
    },
    /// To the on-failure destination; then the checkpoint moves past it.
    GiveUp {
        commit_before: Option<usize>,
        span: Span,
        condition: Condition,
    },
}

/// Wait before retry `n` (1-based): 100 ms doubling, at most 5 s.
pub(crate) fn retry_delay_ms(n: u32) -> i64 {
    (100_i64 << n.saturating_sub(1).min(6)).min(5_000)
}

/// Reads an invocation's result. `seqs` are the sequence numbers of the
/// span, in order; a reported identifier that is empty, null or not one
/// of them fails the whole span, as on Lambda.
pub(crate) fn outcome(
    policy: &Policy,
    answer: Option<&[u8]>,
    start: usize,
    seqs: &[&str],
) -> Outcome {
    let Some(body) = answer else {
        return Outcome::Failed;
    };
    if !policy.report_item_failures {
        return Outcome::Success;
    }
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return Outcome::Success;
    };
    let items = match doc.get("batchItemFailures") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => return Outcome::Success,
    };
    let mut first = usize::MAX;
    for item in items {
        let id = item
            .get("itemIdentifier")
            .and_then(Value::as_str)
            .unwrap_or("");
        match seqs.iter().position(|s| !id.is_empty() && *s == id) {
            Some(i) => first = first.min(i),
            None => return Outcome::Failed,
        }
    }
    Outcome::FailedFrom(start + first)
}

/// What follows from `outcome` for `span`. `arrivals` are the batch's
/// arrival times (ms), by index.
pub(crate) fn decide(
    policy: &Policy,
    span: Span,
    outcome: Outcome,
    arrivals: &[i64],
    now_ms: i64,
) -> Step {
    let (commit_before, failed) = match outcome {
        Outcome::Success => return Step::Done,
        Outcome::Failed => (None, span),
        Outcome::FailedFrom(i) if i <= span.start || i >= span.end => (None, span),
        Outcome::FailedFrom(i) => (Some(i), Span { start: i, ..span }),
    };
    let oldest = arrivals.get(failed.start).copied().unwrap_or(now_ms);
    if policy
        .max_record_age_ms
        .is_some_and(|max| now_ms.saturating_sub(oldest) > max)
    {
        return Step::GiveUp {
            commit_before,
            span: failed,
            condition: Condition::RecordAgeExceeded,
        };
    }
    if policy.bisect && failed.len() > 1 {
        let mid = failed.start + failed.len() / 2;
        return Step::Split {
            commit_before,
            first: Span { end: mid, ..failed },
            second: Span {
                start: mid,
                ..failed
            },
        };
    }
    if failed.retries >= policy.max_retries {
        return Step::GiveUp {
            commit_before,
            span: failed,
            condition: Condition::RetryAttemptsExhausted,
        };
    }
    let retries = failed.retries + 1;
    Step::Retry {
        commit_before,
        span: Span { retries, ..failed },
        at_ms: now_ms + retry_delay_ms(retries),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Policy = Policy {
        max_retries: 2,
        max_record_age_ms: None,
        bisect: false,
        report_item_failures: false,
    };

    fn span(start: usize, end: usize, retries: u32) -> Span {
        Span {
            start,
            end,
            retries,
        }
    }

    #[test]
    fn answers_are_read_as_lambda_reads_them() {
        let report = Policy {
            report_item_failures: true,
            ..PLAIN
        };
        let seqs = ["10", "11", "12"];
        let cases: [(&Policy, Option<&str>, Outcome); 10] = [
            (&PLAIN, None, Outcome::Failed),
            (
                &PLAIN,
                Some(r#"{"batchItemFailures":[{"itemIdentifier":"11"}]}"#),
                Outcome::Success,
            ),
            (&report, Some("null"), Outcome::Success),
            (&report, Some("not json"), Outcome::Success),
            (
                &report,
                Some(r#"{"batchItemFailures":[]}"#),
                Outcome::Success,
            ),
            (
                &report,
                Some(r#"{"batchItemFailures":null}"#),
                Outcome::Success,
            ),
            (
                &report,
                Some(r#"{"batchItemFailures":[{"itemIdentifier":"12"},{"itemIdentifier":"11"}]}"#),
                Outcome::FailedFrom(5 + 1),
            ),
            (
                &report,
                Some(r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#),
                Outcome::Failed,
            ),
            (
                &report,
                Some(r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#),
                Outcome::Failed,
            ),
            (
                &report,
                Some(r#"{"batchItemFailures":[{"itemIdentifier":"99"}]}"#),
                Outcome::Failed,
            ),
        ];
        for (policy, body, want) in cases {
            assert_eq!(
                outcome(policy, body.map(str::as_bytes), 5, &seqs),
                want,
                "{body:?}"
            );
        }
    }

    #[test]
    fn what_follows_an_outcome() {
        let bisect = Policy {
            bisect: true,
            ..PLAIN
        };
        let aged = Policy {
            max_record_age_ms: Some(60_000),
            ..PLAIN
        };
        let arrivals = [0, 0, 0, 50_000, 50_000, 50_000];
        let now = 100_000;
        let cases = [
            (PLAIN, span(0, 6, 0), Outcome::Success, Step::Done),
            (
                PLAIN,
                span(0, 6, 0),
                Outcome::Failed,
                Step::Retry {
                    commit_before: None,
                    span: span(0, 6, 1),
                    at_ms: now + 100,
                },
            ),
            (
                PLAIN,
                span(0, 6, 2),
                Outcome::Failed,
                Step::GiveUp {
                    commit_before: None,
                    span: span(0, 6, 2),
                    condition: Condition::RetryAttemptsExhausted,
                },
            ),
            // A partial response: checkpoint before the failed record, and
            // the rest is retried from there.
            (
                PLAIN,
                span(0, 6, 0),
                Outcome::FailedFrom(4),
                Step::Retry {
                    commit_before: Some(4),
                    span: span(4, 6, 1),
                    at_ms: now + 100,
                },
            ),
            // The first record failed: nothing to checkpoint.
            (
                PLAIN,
                span(0, 6, 0),
                Outcome::FailedFrom(0),
                Step::Retry {
                    commit_before: None,
                    span: span(0, 6, 1),
                    at_ms: now + 100,
                },
            ),
            // Splits keep the retry count: they are not retries.
            (
                bisect,
                span(0, 6, 1),
                Outcome::Failed,
                Step::Split {
                    commit_before: None,
                    first: span(0, 3, 1),
                    second: span(3, 6, 1),
                },
            ),
            (
                bisect,
                span(2, 3, 0),
                Outcome::Failed,
                Step::Retry {
                    commit_before: None,
                    span: span(2, 3, 1),
                    at_ms: now + 100,
                },
            ),
            (
                bisect,
                span(2, 3, 2),
                Outcome::Failed,
                Step::GiveUp {
                    commit_before: None,
                    span: span(2, 3, 2),
                    condition: Condition::RetryAttemptsExhausted,
                },
            ),
            // Too old: given up at once, whatever the retries left.
            (
                aged,
                span(0, 6, 0),
                Outcome::Failed,
                Step::GiveUp {
                    commit_before: None,
                    span: span(0, 6, 0),
                    condition: Condition::RecordAgeExceeded,
                },
            ),
            (
                aged,
                span(0, 6, 0),
                Outcome::FailedFrom(3),
                Step::Retry {
                    commit_before: Some(3),
                    span: span(3, 6, 1),
                    at_ms: now + 100,
                },
            ),
        ];
        for (policy, s, out, want) in cases {
            assert_eq!(
                decide(&policy, s, out, &arrivals, now),
                want,
                "{s:?} {out:?}"
            );
        }
    }

    #[test]
    fn retry_delays_double_and_are_capped() {
        let delays: Vec<i64> = (1..=8).map(retry_delay_ms).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }
}
