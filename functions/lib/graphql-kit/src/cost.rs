//! What a list field costs in the complexity limit: its page size times its selection.
//! Fields with `first` or `limit` cost what they ask for (clamped as the services clamp
//! it); lists without one cost an estimate of their usual length.

use gantry_catalog::model::RECENT_VERSIONS;
use gantry_catalog::service::{DEFAULT_PAGE, DEFAULT_VERSIONS, MAX_PAGE, MAX_VERSIONS};

/// A root list with no page argument (every component, environment, integration).
pub const ROOT_LIST: usize = 20;
/// A list inside one object (a release's components, a promotion's gates).
pub const NESTED_LIST: usize = 5;
/// A release's manifest, which may read each image's signatures from its registry.
pub const MANIFEST: usize = 50;

/// `first` as the services read it: [`DEFAULT_PAGE`] when absent, at most [`MAX_PAGE`].
pub fn page(first: Option<i64>) -> usize {
    clamp(first, DEFAULT_PAGE, MAX_PAGE)
}

/// `limit` of a component's `versions`: [`RECENT_VERSIONS`] when absent, at most [`MAX_VERSIONS`].
pub fn recent_versions(limit: Option<i64>) -> usize {
    clamp(limit, RECENT_VERSIONS, MAX_VERSIONS)
}

/// `limit` of a version list: [`DEFAULT_VERSIONS`] when absent, at most [`MAX_VERSIONS`].
pub fn versions(limit: Option<i64>) -> usize {
    clamp(limit, DEFAULT_VERSIONS, MAX_VERSIONS)
}

fn clamp(asked: Option<i64>, default: usize, max: usize) -> usize {
    asked.map_or(default, |n| usize::try_from(n).unwrap_or(1).clamp(1, max))
}

/// `size` rows of `child` each, plus the field itself.
pub fn list(size: usize, child: usize) -> usize {
    size.saturating_mul(child).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_follow_the_services() {
        assert_eq!(page(None), DEFAULT_PAGE);
        assert_eq!(page(Some(1_000_000)), MAX_PAGE);
        assert_eq!(page(Some(-5)), 1);
        assert_eq!(versions(None), DEFAULT_VERSIONS);
        assert_eq!(list(100, 14), 1_401);
        assert_eq!(list(usize::MAX, 2), usize::MAX);
    }
}
