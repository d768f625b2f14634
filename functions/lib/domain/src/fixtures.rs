//! Test builders shared by the domain's unit tests.

use chrono::Utc;

use crate::ids::{ComponentId, ReleaseId};
use crate::model::{Release, ReleaseComponent, ReleaseStatus};
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
