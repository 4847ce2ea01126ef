//! Parsing of Serverless Framework variables: `${source:address, fallback}`.
//!
//! Only `${...}` whose content starts like a variable source (`self:`, `env:`,
//! `file(...)`) is a variable. Anything else, `${PORT}` in a web command or
//! CloudFormation's `${AWS::Region}`, is kept as written: rouse substitutes
//! `${PORT}` itself when it starts an instance.

/// A string split into literal text and variables.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Lit(String),
    Var(Expr),
}

/// One `${...}`: the first alternative, then the fallbacks after commas.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expr {
    /// The variable as written, `${...}` included, for messages.
    pub text: String,
    pub alts: Vec<Alt>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Alt {
    Str(String),
    Int(i128),
    Float(f64),
    Bool(bool),
    /// `source:address`; the address may itself contain variables.
    Ref {
        source: String,
        address: Vec<Part>,
    },
    Nested(Expr),
}

/// Splits `s` into literal text and variables. Errors are messages; the
/// caller knows the position of the string.
pub(crate) fn parse(s: &str) -> Result<Vec<Part>, String> {
    parse_nested(s, 0)
}

/// Nesting (`${self:a.${opt:stage}}`) is parsed recursively; real files
/// nest two or three levels, and the bound keeps hostile input off the stack.
const MAX_NESTING: usize = 10;

fn parse_nested(s: &str, depth: usize) -> Result<Vec<Part>, String> {
    if depth > MAX_NESTING {
        return Err("variables are nested too deeply".to_owned());
    }
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        lit.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match find_close(after) {
            Some(end) if looks_like_variable(&after[..end]) => {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Var(parse_expr(&after[..end], depth)?));
                rest = &after[end + 1..];
            }
            // Not a variable (`${PORT}`): kept as written, skipped whole so
            // that scanning stays linear.
            Some(end) => {
                lit.push_str(&rest[start..start + 2 + end + 1]);
                rest = &after[end + 1..];
            }
            None if looks_like_variable(after) => {
                return Err(format!("unterminated variable `${{{after}`: missing `}}`"));
            }
            None => {
                lit.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

/// Whether the string contains at least one variable (cheap pre-check first).
pub(crate) fn has_variables(parts: &[Part]) -> bool {
    parts.iter().any(|p| matches!(p, Part::Var(_)))
}

/// The characters of `s` that stand at its own level: outside quoted
/// strings (fallbacks may contain `}` and `,`) and outside nested `${...}`.
/// A `}` that closes nothing opened inside `s` is yielded.
fn top_level(s: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut chars = s.char_indices().peekable();
    std::iter::from_fn(move || {
        while let Some((i, c)) = chars.next() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '\'' | '"' => quote = Some(c),
                    '$' if chars.peek().map(|(_, n)| *n) == Some('{') => {
                        chars.next();
                        depth += 1;
                    }
                    '}' if depth > 0 => depth -= 1,
                    _ if depth == 0 => return Some((i, c)),
                    _ => {}
                },
            }
        }
        None
    })
}

/// Byte index of the `}` closing a `${` whose content starts at `s[0]`.
fn find_close(s: &str) -> Option<usize> {
    top_level(s).find(|&(_, c)| c == '}').map(|(i, _)| i)
}

/// `self:x`, `env:X`, `file(./a.yml):x`, or a nested variable first; not
/// `PORT` and not `AWS::Region`.
fn looks_like_variable(content: &str) -> bool {
    let content = content.trim_start();
    if content.starts_with("${") {
        return true;
    }
    let ident_len = source_len(content);
    if ident_len == 0 {
        return false;
    }
    let tail = &content[ident_len..];
    tail.starts_with('(') || (tail.starts_with(':') && !tail.starts_with("::"))
}

/// Length of a leading source name: an ASCII letter, then letters and digits.
fn source_len(s: &str) -> usize {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() => {}
        _ => return 0,
    }
    chars
        .find(|(_, c)| !c.is_ascii_alphanumeric())
        .map_or(s.len(), |(i, _)| i)
}

fn parse_expr(content: &str, depth: usize) -> Result<Expr, String> {
    let text = format!("${{{content}}}");
    let alts = split_alternatives(content)
        .into_iter()
        .map(|alt| parse_alt(alt.trim(), &text, depth + 1))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Expr { text, alts })
}

/// Splits at commas that are not inside a nested variable or a quoted string.
fn split_alternatives(content: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in top_level(content).filter(|&(_, c)| c == ',') {
        out.push(&content[start..i]);
        start = i + 1;
    }
    out.push(&content[start..]);
    out
}

fn parse_alt(alt: &str, whole: &str, depth: usize) -> Result<Alt, String> {
    if alt.is_empty() {
        return Err(format!("empty alternative in `{whole}`"));
    }
    if let Some(inner) = alt.strip_prefix("${") {
        return match find_close(inner) {
            Some(end) if end + 1 == inner.len() => {
                Ok(Alt::Nested(parse_expr(&inner[..end], depth)?))
            }
            _ => Err(format!("cannot read `{alt}` in `{whole}`")),
        };
    }
    for q in ['\'', '"'] {
        if alt.starts_with(q) {
            return match alt[1..].strip_suffix(q) {
                Some(inner) if alt.len() >= 2 => Ok(Alt::Str(inner.to_owned())),
                _ => Err(format!("unterminated string `{alt}` in `{whole}`")),
            };
        }
    }
    match alt {
        "true" => return Ok(Alt::Bool(true)),
        "false" => return Ok(Alt::Bool(false)),
        _ => {}
    }
    if alt.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
        if let Ok(i) = alt.parse::<i128>() {
            return Ok(Alt::Int(i));
        }
        if let Ok(f) = alt.parse::<f64>() {
            if f.is_finite() {
                return Ok(Alt::Float(f));
            }
        }
    }
    let ident_len = source_len(alt);
    let mut source_end = ident_len;
    if ident_len > 0 && alt[ident_len..].starts_with('(') {
        // `file(./config.yml)`: kept whole so the message names it.
        source_end = alt[ident_len..]
            .find(')')
            .map_or(alt.len(), |i| ident_len + i + 1);
    }
    match alt[source_end..].strip_prefix(':') {
        Some(address) if ident_len > 0 => Ok(Alt::Ref {
            source: alt[..source_end].to_owned(),
            address: parse_nested(address.trim(), depth)?,
        }),
        // `${file(./config.yml)}`: the whole file.
        None if source_end > ident_len && source_end == alt.len() => Ok(Alt::Ref {
            source: alt.to_owned(),
            address: parse_nested("", depth)?,
        }),
        _ => Err(format!(
            "cannot read `{alt}` in `{whole}`: expected `source:address` (like `self:custom.x` \
             or `env:NAME`), a quoted string or a number"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Part {
        Part::Lit(s.to_owned())
    }

    fn reference(source: &str, address: &str) -> Alt {
        Alt::Ref {
            source: source.to_owned(),
            address: if address.is_empty() {
                vec![]
            } else {
                vec![lit(address)]
            },
        }
    }

    fn var(text: &str, alts: Vec<Alt>) -> Part {
        Part::Var(Expr {
            text: text.to_owned(),
            alts,
        })
    }

    #[test]
    fn parses_templates() {
        let cases: Vec<(&str, Vec<Part>)> = vec![
            ("plain", vec![lit("plain")]),
            ("", vec![]),
            ("listen ${PORT};", vec![lit("listen ${PORT};")]),
            ("${AWS::Region}-x", vec![lit("${AWS::Region}-x")]),
            ("cost: $5 {a}", vec![lit("cost: $5 {a}")]),
            ("${unclosed", vec![lit("${unclosed")]),
            (
                "${self:service}",
                vec![var("${self:service}", vec![reference("self", "service")])],
            ),
            (
                "a-${opt:stage}-b",
                vec![
                    lit("a-"),
                    var("${opt:stage}", vec![reference("opt", "stage")]),
                    lit("-b"),
                ],
            ),
            (
                "${env:FOO, 'b}a,r'}",
                vec![var(
                    "${env:FOO, 'b}a,r'}",
                    vec![reference("env", "FOO"), Alt::Str("b}a,r".to_owned())],
                )],
            ),
            (
                "${env:N, 3}${env:F, 1.5}${env:B, false}",
                vec![
                    var("${env:N, 3}", vec![reference("env", "N"), Alt::Int(3)]),
                    var(
                        "${env:F, 1.5}",
                        vec![reference("env", "F"), Alt::Float(1.5)],
                    ),
                    var(
                        "${env:B, false}",
                        vec![reference("env", "B"), Alt::Bool(false)],
                    ),
                ],
            ),
            (
                "${file(./a.yml):x}",
                vec![var(
                    "${file(./a.yml):x}",
                    vec![reference("file(./a.yml)", "x")],
                )],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn parses_nesting() {
        let parts = parse("${self:custom.${opt:stage}.url, ${env:URL}}").unwrap();
        let [Part::Var(expr)] = parts.as_slice() else {
            panic!("{parts:?}")
        };
        assert_eq!(expr.alts.len(), 2);
        let Alt::Ref { source, address } = &expr.alts[0] else {
            panic!("{expr:?}")
        };
        assert_eq!(source, "self");
        assert_eq!(
            address,
            &vec![
                lit("custom."),
                var("${opt:stage}", vec![reference("opt", "stage")]),
                lit(".url"),
            ]
        );
        assert!(matches!(&expr.alts[1], Alt::Nested(e) if e.text == "${env:URL}"));
    }

    #[test]
    fn rejects_malformed_variables() {
        for (input, needle) in [
            ("${self:service", "unterminated variable"),
            ("${env:A, 'x}", "unterminated variable"),
            ("${env:A,}", "empty alternative"),
            ("${env:A, what}", "cannot read `what`"),
            ("${env:A, 'x\"}", "unterminated variable"),
            ("${env:A, 'x'y}", "unterminated string"),
        ] {
            let err = parse(input).unwrap_err();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    #[test]
    fn odd_input_does_not_panic() {
        for input in [
            "${",
            "${}",
            "$",
            "${${",
            "${'",
            "${a:${b:}",
            "é${x:é}é",
            "${é:x}",
            "}}${",
        ] {
            let _ = parse(input);
        }
        let deep = format!("{}{}", "${env:A, ".repeat(10_000), "}".repeat(10_000));
        assert_eq!(parse(&deep).unwrap_err(), "variables are nested too deeply");
    }
}
