//! Schema introspection for real clients. GraphiQL, Apollo tools and code generators send
//! graphql-js's `getIntrospectionQuery()`, whose `ofType` chain nests deeper than any data
//! query may. A document that asks for nothing but introspection runs on a schema that
//! resolves only introspection, with a depth limit that fits the standard query; every
//! other document keeps the data limits.

use std::collections::HashSet;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet};

/// Deep enough for the standard query's nine-level `TypeRef` fragment; still bounded.
pub const MAX_DEPTH: usize = 20;
/// The standard query expands to a few hundred fields; aliasing it many times is refused.
pub const MAX_COMPLEXITY: usize = 2_000;

/// True when every operation of `document` is a query that selects only `__schema`,
/// `__type` and `__typename` at its root (directly or through fragments).
pub fn is_introspection_only(document: &ExecutableDocument) -> bool {
    let operations: Vec<_> = match &document.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(ops) => ops.values().collect(),
    };
    !operations.is_empty()
        && operations.iter().all(|op| {
            op.node.ty == OperationType::Query
                && only_meta_fields(document, &op.node.selection_set.node, &mut HashSet::new())
        })
}

fn only_meta_fields<'a>(document: &'a ExecutableDocument, set: &'a SelectionSet, seen: &mut HashSet<&'a str>) -> bool {
    set.items.iter().all(|item| match &item.node {
        Selection::Field(field) => field.node.name.node.starts_with("__"),
        Selection::InlineFragment(inline) => only_meta_fields(document, &inline.node.selection_set.node, seen),
        Selection::FragmentSpread(spread) => {
            let name = spread.node.fragment_name.node.as_str();
            if !seen.insert(name) {
                // Checked already (or a cycle, which validation refuses).
                return true;
            }
            document
                .fragments
                .get(&spread.node.fragment_name.node)
                .is_some_and(|f| only_meta_fields(document, &f.node.selection_set.node, seen))
        }
    })
}

#[cfg(test)]
mod tests {
    fn is_introspection_only(query: &str) -> bool {
        async_graphql::parser::parse_query(query).is_ok_and(|d| super::is_introspection_only(&d))
    }

    #[test]
    fn standard_client_queries_are_introspection() {
        for query in [
            include_str!("../../../../tests/fixtures/graphql/introspection-default.graphql"),
            include_str!("../../../../tests/fixtures/graphql/introspection-full.graphql"),
            "{ __typename }",
            "query { __type(name: \"Release\") { name fields { name } } }",
            "query Q { ...Meta } fragment Meta on Query { __schema { queryType { name } } }",
        ] {
            assert!(is_introspection_only(query), "{query}");
        }
    }

    #[test]
    fn anything_else_is_not() {
        for query in [
            "{ __schema { types { name } } releases(first: 1) { totalCount } }",
            "query Q { ...Data } fragment Data on Query { components { id } }",
            "mutation { __typename }",
            "query A { __typename } query B { components { id } }",
            "query { ...A ...A } fragment A on Query { ...A components { id } }",
            "{ __schema { types { name } }",
            "",
        ] {
            assert!(!is_introspection_only(query), "{query}");
        }
    }
}
