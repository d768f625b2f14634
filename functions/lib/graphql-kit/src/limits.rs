//! Cheap checks a document passes before async-graphql validates it. Validation walks
//! every fragment spread as if it were written out, so thirty fragments that each spread
//! the previous one twice cost 2^30 steps; and the parser recurses once per bracket. Both
//! checks here are linear in the document: a scan of its brackets before parsing, then one
//! pass over the parsed document that counts the selections it would expand to, each
//! fragment counted once and remembered.

use std::collections::HashMap;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Value as ConstValue, Variables};
use async_graphql_value::Value;

/// Brackets (`{`, `[`, `(`) may nest this deep; the data schema's depth limit is 12.
pub const MAX_NESTING: usize = 64;
/// A document may expand to this many selections, counting every operation and fragment
/// with each spread written out. The standard introspection query expands to about 200.
pub const MAX_EXPANDED_SELECTIONS: u64 = 10_000;

/// No string argument or variable may be longer than this (a release's metadata, the
/// longest input, is at most 16 KiB of JSON).
pub const MAX_STRING_CHARS: usize = 16_384;
/// No list argument or variable may hold more items than this.
pub const MAX_LIST_ITEMS: usize = 1_000;

/// Why a document was refused before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooDeep,
    TooLarge { selections: u64 },
    LongString,
    LongList,
}

impl Refusal {
    /// `BAD_USER_INPUT` for input values, `GRAPHQL_VALIDATION_FAILED` for the document.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::LongString | Refusal::LongList => "BAD_USER_INPUT",
            Refusal::TooDeep | Refusal::TooLarge { .. } => "GRAPHQL_VALIDATION_FAILED",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooDeep => write!(f, "the document nests brackets deeper than {MAX_NESTING}"),
            Refusal::LongString => write!(f, "a string input is longer than {MAX_STRING_CHARS} characters"),
            Refusal::LongList => write!(f, "a list input has more than {MAX_LIST_ITEMS} items"),
            Refusal::TooLarge { selections } => write!(
                f,
                "the document expands to {} selections with its fragments written out; the limit is {MAX_EXPANDED_SELECTIONS}",
                if *selections > MAX_EXPANDED_SELECTIONS * 1000 {
                    "millions of".to_owned()
                } else {
                    selections.to_string()
                }
            ),
        }
    }
}

/// Refuses a document whose brackets nest deeper than [`MAX_NESTING`], without parsing it.
/// Brackets inside strings, block strings and comments do not count.
pub fn check_nesting(query: &str) -> Result<(), Refusal> {
    let bytes = query.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Refusal::TooDeep);
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            b'#' => i = line_end(bytes, i),
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i = find(bytes, i + 3, b"\"\"\"").map_or(bytes.len(), |end| end + 2);
            }
            b'"' => i = string_end(bytes, i + 1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The index of the line terminator (`\n` or `\r`) that ends a comment starting at `from`.
fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..].iter().position(|b| matches!(b, b'\n' | b'\r')).map_or(bytes.len(), |n| from + n)
}

/// The index of the next `needle` at or after `from`; a `\"""` inside a block string is
/// skipped because it starts with a backslash, not a quote.
fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let mut i = from;
    while i + needle.len() <= bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The index of the closing quote of a string that starts at `from`, or of its line end.
fn string_end(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'"' | b'\n' | b'\r' => return i,
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// Refuses a parsed document that would expand to more than [`MAX_EXPANDED_SELECTIONS`].
pub fn check_expansion(document: &ExecutableDocument) -> Result<(), Refusal> {
    let total = expanded_size(document);
    if total > MAX_EXPANDED_SELECTIONS { Err(Refusal::TooLarge { selections: total }) } else { Ok(()) }
}

/// The top-level selection set of every operation and every fragment definition.
fn selection_sets(document: &ExecutableDocument) -> impl Iterator<Item = &SelectionSet> {
    let operations: Vec<&SelectionSet> = match &document.operations {
        DocumentOperations::Single(op) => vec![&op.node.selection_set.node],
        DocumentOperations::Multiple(ops) => ops.values().map(|op| &op.node.selection_set.node).collect(),
    };
    operations.into_iter().chain(document.fragments.values().map(|f| &f.node.selection_set.node))
}

/// The selections of every operation and fragment, with each spread written out.
fn expanded_size(document: &ExecutableDocument) -> u64 {
    let mut counter = Counter { document, memo: HashMap::new() };
    selection_sets(document).fold(0u64, |sum, set| sum.saturating_add(counter.set(set)))
}

struct Counter<'a> {
    document: &'a ExecutableDocument,
    /// Each fragment's expanded size; `None` while it is being counted, so a cycle (which
    /// validation refuses) counts as zero instead of recursing for ever.
    memo: HashMap<&'a str, Option<u64>>,
}

impl<'a> Counter<'a> {
    fn set(&mut self, set: &'a SelectionSet) -> u64 {
        set.items.iter().fold(0u64, |sum, item| {
            let size = match &item.node {
                Selection::Field(field) => 1u64.saturating_add(self.set(&field.node.selection_set.node)),
                Selection::InlineFragment(inline) => self.set(&inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => self.fragment(spread.node.fragment_name.node.as_str()),
            };
            sum.saturating_add(size)
        })
    }

    fn fragment(&mut self, name: &'a str) -> u64 {
        if let Some(known) = self.memo.get(name) {
            return known.unwrap_or(0);
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return 0;
        };
        self.memo.insert(name, None);
        let size = self.set(&fragment.node.selection_set.node);
        self.memo.insert(name, Some(size));
        size
    }
}

/// Refuses a string longer than [`MAX_STRING_CHARS`] or a list longer than
/// [`MAX_LIST_ITEMS`] anywhere in the variables or the document's arguments.
pub fn check_inputs(document: &ExecutableDocument, variables: &Variables) -> Result<(), Refusal> {
    for value in variables.values() {
        check_const(value)?;
    }
    selection_sets(document).try_for_each(arguments_in)
}

fn arguments_in(set: &SelectionSet) -> Result<(), Refusal> {
    set.items.iter().try_for_each(|item| match &item.node {
        Selection::Field(field) => {
            let directives = field.node.directives.iter().flat_map(|d| d.node.arguments.iter());
            for (_, value) in field.node.arguments.iter().chain(directives) {
                check_value(&value.node)?;
            }
            arguments_in(&field.node.selection_set.node)
        }
        Selection::InlineFragment(inline) => arguments_in(&inline.node.selection_set.node),
        Selection::FragmentSpread(_) => Ok(()),
    })
}

fn check_string(s: &str) -> Result<(), Refusal> {
    // Bytes bound characters from above; count only when the bytes are over.
    if s.len() > MAX_STRING_CHARS && s.chars().count() > MAX_STRING_CHARS { Err(Refusal::LongString) } else { Ok(()) }
}

fn check_value(value: &Value) -> Result<(), Refusal> {
    match value {
        Value::String(s) => check_string(s),
        Value::List(items) if items.len() > MAX_LIST_ITEMS => Err(Refusal::LongList),
        Value::List(items) => items.iter().try_for_each(check_value),
        Value::Object(fields) => fields.values().try_for_each(check_value),
        _ => Ok(()),
    }
}

fn check_const(value: &ConstValue) -> Result<(), Refusal> {
    match value {
        ConstValue::String(s) => check_string(s),
        ConstValue::List(items) if items.len() > MAX_LIST_ITEMS => Err(Refusal::LongList),
        ConstValue::List(items) => items.iter().try_for_each(check_const),
        ConstValue::Object(fields) => fields.iter().try_for_each(|(k, v): (&Name, _)| {
            check_string(k.as_str())?;
            check_const(v)
        }),
        _ => Ok(()),
    }
}

/// Every check, on the text, then on the parsed document and the variables. A document
/// whose text passed before is taken from [`Checked`] rather than parsed again; its variables
/// are checked every time.
pub fn check(query: &str, variables: &Variables) -> Result<Option<ExecutableDocument>, Refusal> {
    if let Some(document) = CHECKED.get(query) {
        check_inputs(&document, variables)?;
        return Ok(Some(document));
    }
    check_nesting(query)?;
    match async_graphql::parser::parse_query(query) {
        Ok(document) => {
            check_expansion(&document)?;
            CHECKED.remember(query, &document);
            check_inputs(&document, variables)?;
            Ok(Some(document))
        }
        // A syntax error is reported by async-graphql, as for any other document.
        Err(_) => Ok(None),
    }
}

/// Documents whose text passed the checks of [`check_nesting`] and [`check_expansion`], by
/// that text. Clients send the same few documents again and again, and parsing is the
/// costliest step of a small query. Bounded: at most [`Checked::MAX_ENTRIES`] documents of
/// at most [`Checked::MAX_TEXT`] bytes each; when full, it starts again empty.
pub struct Checked {
    documents: std::sync::Mutex<HashMap<Box<str>, std::sync::Arc<ExecutableDocument>>>,
}

static CHECKED: std::sync::LazyLock<Checked> =
    std::sync::LazyLock::new(|| Checked { documents: std::sync::Mutex::new(HashMap::new()) });

impl Checked {
    pub const MAX_ENTRIES: usize = 128;
    pub const MAX_TEXT: usize = 4_096;

    /// A copy of the document, made after the lock is let go.
    fn get(&self, query: &str) -> Option<ExecutableDocument> {
        let shared = self.documents.lock().ok()?.get(query).cloned()?;
        Some(ExecutableDocument::clone(&shared))
    }

    fn remember(&self, query: &str, document: &ExecutableDocument) {
        if query.len() > Self::MAX_TEXT {
            return;
        }
        if let Ok(mut documents) = self.documents.lock() {
            if documents.len() >= Self::MAX_ENTRIES {
                documents.clear();
            }
            documents.insert(query.into(), std::sync::Arc::new(document.clone()));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.documents.lock().map_or(0, |d| d.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fragment F{n} on Query { ...F{n-1} ...F{n-1} }`, n fragments deep.
    fn doubling(n: usize) -> String {
        let mut doc = String::from("query { ...F0 } fragment F0 on Query { __typename }\n");
        for i in 1..=n {
            doc.push_str(&format!("fragment F{i} on Query {{ ...F{p} ...F{p} }}\n", p = i - 1));
        }
        doc.replacen("...F0", &format!("...F{n}"), 1)
    }

    #[test]
    fn doubling_fragments_are_refused_in_linear_time() {
        let started = std::time::Instant::now();
        let refusal = check(&doubling(30), &Variables::default()).unwrap_err();
        assert!(matches!(refusal, Refusal::TooLarge { selections } if selections > 1 << 30));
        assert!(refusal.to_string().contains("millions of selections"), "{refusal}");
        assert!(started.elapsed() < std::time::Duration::from_millis(100), "{:?}", started.elapsed());
        assert!(check(&doubling(8), &Variables::default()).is_ok(), "2^8 selections are fine");
    }

    #[test]
    fn standard_introspection_fits() {
        for query in [
            include_str!("../../../../tests/fixtures/graphql/introspection-default.graphql"),
            include_str!("../../../../tests/fixtures/graphql/introspection-full.graphql"),
        ] {
            let size = expanded_size(&async_graphql::parser::parse_query(query).unwrap());
            assert!((50..1_000).contains(&size), "{size}");
            assert!(check(query, &Variables::default()).unwrap().is_some());
        }
    }

    #[test]
    fn deep_brackets_are_refused_before_parsing() {
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(500_000), "]".repeat(500_000));
        assert_eq!(check(&deep, &Variables::default()).unwrap_err(), Refusal::TooDeep);
        let nested = format!("{}{}", "{ a ".repeat(65), "}".repeat(65));
        assert_eq!(check_nesting(&nested).unwrap_err(), Refusal::TooDeep);
        assert!(check_nesting(&format!("{}{}", "{ a ".repeat(60), "}".repeat(60))).is_ok());
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let brackets = "[".repeat(100);
        for query in [
            format!("{{ a(x: \"{brackets}\") }}"),
            format!("{{ a(x: \"\\\"{brackets}\") }}"),
            format!("{{ a(x: \"\"\"{brackets} \\\"\"\" {brackets}\"\"\") }}"),
            format!("# {brackets}\n{{ a }}"),
        ] {
            assert!(check_nesting(&query).is_ok(), "{query}");
        }
        // A comment ends at a carriage return too, as the parser reads it.
        let hidden = format!("# comment\r{}", "[".repeat(65));
        assert_eq!(check_nesting(&hidden).unwrap_err(), Refusal::TooDeep);
        // An unterminated string ends at its line, as the parser reads it.
        let unterminated = format!("{{ a(x: \"{brackets}\n{brackets}) }}");
        assert_eq!(check_nesting(&unterminated).unwrap_err(), Refusal::TooDeep);
    }

    #[test]
    fn a_document_checked_before_is_reused_and_its_variables_are_checked_again() {
        let query = "query Reused($x: String) { reused(x: $x) }";
        assert!(check(query, &Variables::default()).unwrap().is_some());
        assert!(CHECKED.get(query).is_some(), "remembered after it passed");
        let long = Variables::from_json(serde_json::json!({ "x": "x".repeat(MAX_STRING_CHARS + 1) }));
        assert_eq!(check(query, &long).unwrap_err(), Refusal::LongString);
        let refused = doubling(30);
        assert!(check(&refused, &Variables::default()).is_err());
        assert!(CHECKED.get(&refused).is_none(), "a refused document is not remembered");
        let long_text = format!("{{ a(x: \"{}\") }}", "y".repeat(Checked::MAX_TEXT));
        assert!(check(&long_text, &Variables::default()).is_ok());
        assert!(CHECKED.get(&long_text).is_none(), "a long text is parsed every time");
        for i in 0..2 * Checked::MAX_ENTRIES {
            check(&format!("{{ field{i} }}"), &Variables::default()).unwrap();
            assert!(CHECKED.len() <= Checked::MAX_ENTRIES);
        }
    }

    #[test]
    fn cycles_and_unknown_fragments_terminate() {
        let none = Variables::default();
        assert!(check("query { ...A } fragment A on Query { ...B a } fragment B on Query { ...A b }", &none).is_ok());
        assert!(check("query { ...Missing }", &none).is_ok());
        assert!(check("query {", &none).unwrap().is_none(), "syntax errors are left to async-graphql");
    }

    #[test]
    fn long_strings_and_lists_are_refused_wherever_they_are() {
        let none = Variables::default();
        let long = "x".repeat(MAX_STRING_CHARS + 1);
        let fits = "é".repeat(MAX_STRING_CHARS);
        let in_fragment = format!("query {{ ...F }} fragment F on Query {{ a(x: {{ y: [\"{long}\"] }}) }}");
        assert_eq!(check(&in_fragment, &none).unwrap_err(), Refusal::LongString);
        assert_eq!(check(&format!("{{ a @include(if: \"{long}\") }}"), &none).unwrap_err(), Refusal::LongString);
        assert!(check(&format!("{{ a(x: \"{fits}\") }}"), &none).is_ok(), "characters count, not bytes");
        let list = format!("{{ a(x: [{}]) }}", "1,".repeat(MAX_LIST_ITEMS + 1));
        assert_eq!(check(&list, &none).unwrap_err(), Refusal::LongList);
        let variables = Variables::from_json(serde_json::json!({ "input": { "deep": [{ "s": long }] } }));
        let refusal = check("query Q($input: X) { a(x: $input) }", &variables).unwrap_err();
        assert_eq!((refusal.code(), refusal.to_string().len() < 100), ("BAD_USER_INPUT", true));
    }
}
