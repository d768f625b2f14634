//! The one page type every listing answers with: edges of `cursor` and `node`, and
//! `pageInfo`, as Relay clients expect.

use async_graphql::{OutputType, SimpleObject};
use gantry_domain::ports::Page;

use crate::promotions::{EvidenceRecord, Promotion};
use crate::types::Release;

#[derive(SimpleObject)]
#[graphql(concrete(name = "ReleaseEdge", params(Release)))]
#[graphql(concrete(name = "PromotionEdge", params(Promotion)))]
#[graphql(concrete(name = "EvidenceEdge", params(EvidenceRecord)))]
pub struct Edge<T: OutputType> {
    pub cursor: String,
    pub node: T,
}

pub type PromotionEdge = Edge<Promotion>;
pub type EvidenceEdge = Edge<EvidenceRecord>;

/// A page of items, newest first.
#[derive(SimpleObject)]
#[graphql(concrete(name = "PromotionConnection", params(PromotionEdge)))]
#[graphql(concrete(name = "EvidenceConnection", params(EvidenceEdge)))]
pub struct Connection<E: OutputType> {
    pub edges: Vec<E>,
    pub page_info: PageInfo,
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

/// A domain page's edges, each item wrapped by `node`, and its page info.
pub fn edges<D, T: OutputType>(page: Page<D>, node: impl Fn(D) -> T) -> (Vec<Edge<T>>, PageInfo) {
    let end_cursor = page.items.last().map(|(cursor, _)| cursor.clone());
    let edges = page.items.into_iter().map(|(cursor, item)| Edge { cursor, node: node(item) }).collect();
    (edges, PageInfo { has_next_page: page.has_next_page, end_cursor })
}

impl<T: OutputType> Connection<Edge<T>>
where
    Edge<T>: OutputType,
{
    pub fn from_page<D>(page: Page<D>, node: impl Fn(D) -> T) -> Self {
        let (edges, page_info) = edges(page, node);
        Self { edges, page_info }
    }
}
