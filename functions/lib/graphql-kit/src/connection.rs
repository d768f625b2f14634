//! The page shape every listing answers with, as Relay clients expect: edges of `cursor` and
//! `node`, and `pageInfo`. It names no entity: each listing declares its own edge and
//! connection types with [`edge!`](crate::edge) and [`connection!`](crate::connection!) beside
//! its node type.

use async_graphql::SimpleObject;

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

/// Declares `$edge`: a `cursor` and its `node`, a `$node`, with `$edge::page`, which turns a
/// domain page into edges (each item wrapped by `node`) and the page's info.
#[macro_export]
macro_rules! edge {
    ($edge:ident, $node:ty) => {
        #[derive(async_graphql::SimpleObject)]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        impl $edge {
            pub fn page<D>(
                page: gantry_domain::ports::Page<D>,
                node: impl Fn(D) -> $node,
            ) -> (Vec<Self>, $crate::connection::PageInfo) {
                let end_cursor = page.items.last().map(|(cursor, _)| cursor.clone());
                let edges = page.items.into_iter().map(|(cursor, item)| Self { cursor, node: node(item) }).collect();
                (edges, $crate::connection::PageInfo { has_next_page: page.has_next_page, end_cursor })
            }
        }
    };
}

/// Declares `$edge` (see [`edge!`](crate::edge)) and `$connection`, a page of them, newest first.
#[macro_export]
macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ty) => {
        $crate::edge!($edge, $node);

        /// A page of items, newest first.
        #[derive(async_graphql::SimpleObject)]
        pub struct $connection {
            pub edges: Vec<$edge>,
            pub page_info: $crate::connection::PageInfo,
        }

        impl $connection {
            pub fn from_page<D>(page: gantry_domain::ports::Page<D>, node: impl Fn(D) -> $node) -> Self {
                let (edges, page_info) = $edge::page(page, node);
                Self { edges, page_info }
            }
        }
    };
}
