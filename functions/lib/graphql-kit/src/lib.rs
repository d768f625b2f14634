//! The GraphQL plumbing `gantry-graphql` builds its schema with, naming no entity: the limits
//! a document is checked against before it is parsed (`limits`), whether it only introspects
//! (`introspection`), what a list field costs (`cost`), Relay connections ([`edge!`] and
//! [`connection!`]), error codes in `extensions.code` (`error`), and the permission guard
//! of every root field (`guard`).

pub mod connection;
pub mod cost;
pub mod error;
pub mod guard;
pub mod introspection;
pub mod limits;
