//! The newest version maps of a component, kept beside it so a page of components reads its
//! versions in one batch instead of a query each.

use serde::{Deserialize, Serialize};

use super::VersionMap;
use crate::ids::VersionMapId;
use crate::values::Channel;

/// How many version maps a component keeps at hand; `Component.versions` asks for this many
/// unless told otherwise.
pub const RECENT_VERSIONS: usize = 20;

/// The highest live (not removed) version maps of a component, highest first.
///
/// They are the top of the component's live maps: no live map left out ranks above one
/// kept. When `complete`, they are all of them. A removal shortens the list and an addition
/// ranks within it, so both keep that true; only a complete list grows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentVersions {
    pub versions: Vec<VersionMap>,
    pub complete: bool,
    /// Bumped on every write; writes are conditional on it.
    #[serde(default)]
    pub revision: u64,
}

impl RecentVersions {
    /// What a new component starts with: all of its (no) versions.
    pub fn empty() -> Self {
        Self { versions: Vec::new(), complete: true, revision: 0 }
    }

    /// The first `limit` versions on `channel` (any channel when `None`), when these hold
    /// them; `None` when only a query of every version can say.
    pub fn serve(&self, channel: Option<&Channel>, limit: usize) -> Option<Vec<VersionMap>> {
        let wanted: Vec<VersionMap> =
            self.versions.iter().filter(|v| channel.is_none_or(|c| v.channel == *c)).take(limit).cloned().collect();
        (wanted.len() == limit || self.complete).then_some(wanted)
    }

    /// Adds a live map; `rank` orders maps (higher first, as the store sorts them).
    pub fn insert<K: Ord>(&mut self, version: VersionMap, rank: impl Fn(&VersionMap) -> K) {
        let keep = if self.complete { (self.versions.len() + 1).min(RECENT_VERSIONS) } else { self.versions.len() };
        self.versions.retain(|v| v.id != version.id);
        self.versions.push(version);
        self.versions.sort_by_cached_key(|v| std::cmp::Reverse(rank(v)));
        if self.versions.len() > keep {
            self.versions.truncate(keep);
            self.complete = false;
        }
    }

    /// Drops a map (removed at the registry); `true` if it was here.
    pub fn remove(&mut self, id: VersionMapId) -> bool {
        let before = self.versions.len();
        self.versions.retain(|v| v.id != id);
        self.versions.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::version_map;

    fn rank(v: &VersionMap) -> semver::Version {
        v.semver.clone()
    }

    fn tags(recent: &RecentVersions) -> Vec<String> {
        recent.versions.iter().map(|v| v.tag.clone()).collect()
    }

    #[test]
    fn a_complete_list_grows_to_its_cap_then_keeps_the_highest() {
        let mut recent = RecentVersions::empty();
        for minor in 0..RECENT_VERSIONS + 5 {
            recent.insert(version_map(&format!("1.{minor}.0"), "stable"), rank);
        }
        assert_eq!(recent.versions.len(), RECENT_VERSIONS);
        assert!(!recent.complete, "five versions are left out");
        assert_eq!(recent.versions[0].tag, format!("1.{}.0", RECENT_VERSIONS + 4));
        // A version lower than all kept is not among the highest.
        recent.insert(version_map("0.1.0", "stable"), rank);
        assert!(!tags(&recent).contains(&"0.1.0".to_owned()));
    }

    #[test]
    fn after_a_removal_an_incomplete_list_stays_short_and_true() {
        let mut recent = RecentVersions { complete: false, ..RecentVersions::empty() };
        recent.insert(version_map("1.0.0", "stable"), rank);
        assert!(recent.versions.is_empty(), "an unknown rest may rank above it");
        let mut recent = RecentVersions::empty();
        let (a, b) = (version_map("1.0.0", "stable"), version_map("2.0.0", "stable"));
        recent.insert(a.clone(), rank);
        recent.insert(b.clone(), rank);
        recent.complete = false;
        assert!(recent.remove(b.id));
        assert!(!recent.remove(b.id), "gone already");
        recent.insert(version_map("0.5.0", "stable"), rank);
        assert_eq!(tags(&recent), ["1.0.0"], "one place, kept for what ranks above 1.0.0");
        recent.insert(version_map("1.5.0", "stable"), rank);
        assert_eq!(tags(&recent), ["1.5.0"]);
    }

    #[test]
    fn serving_answers_only_what_the_list_can_prove() {
        let mut recent = RecentVersions::empty();
        for (tag, channel) in [("1.0.0", "stable"), ("1.1.0-rc.1", "rc"), ("1.1.0", "stable")] {
            recent.insert(version_map(tag, channel), rank);
        }
        let stable = Channel::parse("stable").unwrap();
        let served = recent.serve(Some(&stable), 5).expect("complete: all of them");
        assert_eq!(served.iter().map(|v| v.tag.as_str()).collect::<Vec<_>>(), ["1.1.0", "1.0.0"]);
        recent.complete = false;
        assert_eq!(recent.serve(None, 2).unwrap().len(), 2, "the top two are known");
        assert_eq!(recent.serve(Some(&stable), 3), None, "a third stable one may exist");
    }
}
