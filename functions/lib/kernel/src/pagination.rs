//! Forward pages of a listing, resumed by opaque cursors.

/// A forward page request: at most `first` items after the opaque cursor `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub first: usize,
    pub after: Option<String>,
}

/// One page of results, each with the cursor that resumes after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<(String, T)>,
    pub has_next_page: bool,
}
