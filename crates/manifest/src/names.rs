//! The one rule per kind of name. Names become file names (`logs/<fn>.log`,
//! `instances/<fn>-<id>/`), cgroup names and URL segments, so the manifest
//! parser and the server (for specs that did not come from `rouse
//! deploy`) both check them here. Only ASCII letters, digits and a few
//! punctuation marks pass, so no name holds `/`, whitespace or a control
//! character, and none is `.` or `..`.

/// What a name names; each has its own rule, after AWS's where AWS has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A key under `functions:` (`site`).
    FunctionKey,
    /// A function's full name (`shop-dev-site`), as Lambda's function names.
    Function,
    Service,
    Stage,
    /// Lambda's alias rule; all digits would read as a version.
    Alias,
    Layer,
    /// Kinesis stream names.
    Stream,
    /// SQS queue names; a FIFO queue's ends with `.fifo`.
    Queue,
}

/// What a name may start with.
#[derive(Clone, Copy, PartialEq)]
enum First {
    Letter,
    LetterOrDigit,
    /// Anything the rest allows.
    Any,
}

struct Rule {
    what: &'static str,
    max: usize,
    /// Punctuation allowed besides ASCII letters and digits.
    punctuation: &'static [u8],
    first: First,
    help: &'static str,
}

fn rule(kind: NameKind) -> Rule {
    const WORD: &[u8] = b"-_";
    match kind {
        NameKind::FunctionKey | NameKind::Function => Rule {
            what: "function name",
            max: 64,
            punctuation: WORD,
            first: First::LetterOrDigit,
            help: "use letters, digits, `-` and `_`, starting with a letter or digit, at most 64",
        },
        NameKind::Service => Rule {
            what: "service name",
            max: 64,
            punctuation: b"-",
            first: First::Letter,
            help: "use letters, digits and `-`, starting with a letter, at most 64",
        },
        NameKind::Stage => Rule {
            what: "stage",
            max: 64,
            punctuation: WORD,
            first: First::LetterOrDigit,
            help: "use letters, digits, `-` and `_`, starting with a letter or digit, at most 64",
        },
        NameKind::Alias => Rule {
            what: "alias name",
            max: 128,
            punctuation: WORD,
            first: First::Any,
            help: "use letters, digits, `-` and `_` (not only digits, which name versions), at most 128",
        },
        NameKind::Layer => Rule {
            what: "layer name",
            max: 64,
            punctuation: WORD,
            first: First::Any,
            help: "use letters, digits, `-` and `_`, at most 64",
        },
        NameKind::Stream => Rule {
            what: "stream name",
            max: 128,
            punctuation: b"-_.",
            first: First::Any,
            help: "use letters, digits, `-`, `_` and `.`, at most 128",
        },
        NameKind::Queue => Rule {
            what: "queue name",
            max: 80,
            punctuation: WORD,
            first: First::Any,
            help: "use letters, digits, `-` and `_`, at most 80 with a FIFO queue's `.fifo`",
        },
    }
}

/// `Ok` when `name` is a valid name of `kind`; else the message to show.
pub fn check(kind: NameKind, name: &str) -> Result<(), String> {
    let rule = rule(kind);
    // A FIFO queue's suffix is the one place a queue name has a dot.
    let body = match kind {
        NameKind::Queue => name.strip_suffix(".fifo").unwrap_or(name),
        _ => name,
    };
    let allowed = |b: u8| b.is_ascii_alphanumeric() || rule.punctuation.contains(&b);
    let first_ok = body.bytes().next().is_some_and(|b| match rule.first {
        First::Letter => b.is_ascii_alphabetic(),
        First::LetterOrDigit => b.is_ascii_alphanumeric(),
        First::Any => allowed(b),
    });
    let valid = first_ok
        && name.len() <= rule.max
        && body.bytes().all(allowed)
        // Kinesis allows dots anywhere, but `.` and `..` are not file names.
        && !body.bytes().all(|b| b == b'.')
        && !(kind == NameKind::Alias && body.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        Ok(())
    } else {
        Err(format!("invalid {} {name:?}: {}", rule.what, rule.help))
    }
}

/// The names in a spec that did not come through the loader (a JSON
/// `POST /v1/deployments`): its service, its stage and every function's.
pub fn check_spec(spec: &crate::DeploySpec) -> Result<(), String> {
    check(NameKind::Service, &spec.service)?;
    check(NameKind::Stage, &spec.stage)?;
    for f in &spec.functions {
        check(NameKind::Function, &f.name)?;
        check(NameKind::FunctionKey, &f.short_name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use NameKind::*;

    #[test]
    fn names_are_checked_per_kind() {
        let long = |n: usize| "a".repeat(n);
        let table: Vec<(NameKind, String, bool)> = vec![
            (Function, "shop-dev-site".into(), true),
            (Function, "a_b-9".into(), true),
            (Function, "9lives".into(), true),
            (Function, long(64), true),
            (Function, long(65), false),
            (Function, "".into(), false),
            (Function, "../../../../tmp/x/pwned".into(), false),
            (Function, "a/b".into(), false),
            (Function, "..".into(), false),
            (Function, "a b".into(), false),
            (Function, "a\nb".into(), false),
            (Function, "a\0b".into(), false),
            (Function, "-flag".into(), false),
            (Function, "_x".into(), false),
            (Function, "é".into(), false),
            (FunctionKey, "site".into(), true),
            (FunctionKey, "my fn".into(), false),
            (Service, "shop".into(), true),
            (Service, "shop-2".into(), true),
            (Service, "2shop".into(), false),
            (Service, "shop_x".into(), false),
            (Stage, "dev".into(), true),
            (Stage, "pr_12".into(), true),
            (Stage, "dev/..".into(), false),
            (Alias, "live".into(), true),
            (Alias, "v2".into(), true),
            (Alias, "12".into(), false),
            (Alias, long(128), true),
            (Alias, long(129), false),
            (Alias, "a.b".into(), false),
            (Layer, "deps".into(), true),
            (Layer, "deps/x".into(), false),
            (Stream, "orders.v1".into(), true),
            (Stream, "a_b-c".into(), true),
            (Stream, long(128), true),
            (Stream, long(129), false),
            (Stream, ".".into(), false),
            (Stream, "..".into(), false),
            (Stream, "a/../b".into(), false),
            (Queue, "jobs".into(), true),
            (Queue, "jobs.fifo".into(), true),
            (Queue, "jobs.fif".into(), false),
            (Queue, "a.b".into(), false),
            (Queue, ".fifo".into(), false),
            (Queue, long(80), true),
            (Queue, format!("{}.fifo", long(75)), true),
            (Queue, format!("{}.fifo", long(76)), false),
        ];
        for (kind, name, ok) in table {
            assert_eq!(check(kind, &name).is_ok(), ok, "{kind:?} {name:?}");
        }
    }

    #[test]
    fn the_message_names_the_kind_and_the_rule() {
        let err = check(Service, "a b").unwrap_err();
        assert_eq!(
            err,
            "invalid service name \"a b\": use letters, digits and `-`, starting with a letter, at most 64"
        );
    }
}
