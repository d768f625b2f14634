//! Test builders for unit tests, here and in the contexts above.

use chrono::Utc;

use crate::ids::{ComponentId, ReleaseId, VersionMapId};
use crate::model::{Release, ReleaseComponent, ReleaseStatus, VersionMap, VersionSource};
use crate::values::{Channel, Digest, Name, parse_semver};

/// A release component of image `org/<name>` whose digest is that of `digest_label`.
pub fn component(id: ComponentId, name: &str, digest_label: &str, version: &str) -> ReleaseComponent {
    ReleaseComponent {
        component_id: id,
        component_name: name.into(),
        image: format!("org/{name}"),
        tag: version.into(),
        version: parse_semver(version).unwrap(),
        digest: Digest::of(digest_label.as_bytes()),
        channel: Channel::stable(),
    }
}

/// A live version map of tag `tag` on `channel`, for a fresh component.
pub fn version_map(tag: &str, channel: &str) -> VersionMap {
    VersionMap {
        id: VersionMapId::new(),
        component_id: ComponentId::new(),
        tag: tag.into(),
        digest: Digest::of(tag.as_bytes()),
        semver: parse_semver(tag).unwrap(),
        channel: Channel::parse(channel).unwrap(),
        pushed_at: Utc::now(),
        source: VersionSource::Webhook,
        removed: false,
        payload_digest: None,
    }
}

/// A draft release.
pub fn release(name: &str, components: Vec<ReleaseComponent>) -> Release {
    let now = Utc::now();
    Release {
        id: ReleaseId::new(),
        name: Name::parse(name).unwrap(),
        display_name: None,
        status: ReleaseStatus::Draft,
        components,
        source_ref: None,
        metadata: Default::default(),
        created_at: now,
        created_by: "test".into(),
        updated_at: now,
        revision: 1,
    }
}
