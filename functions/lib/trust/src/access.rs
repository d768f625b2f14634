//! Who may do what. Roles grant permissions on resources; a principal may also carry
//! permissions of its own. Every mutation needs `resource:action`, every query `resource:read`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Result};

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(raw: &str) -> Result<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == raw).ok_or_else(|| {
                    let known: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    DomainError::validation(format!("unknown {} {raw:?}; one of {}", stringify!($name).to_lowercase(), known.join(", ")))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// A bundle of permissions.
    Role {
        Admin = "admin",
        ReleaseCreator = "release-creator",
        Approver = "approver",
        Viewer = "viewer",
    }
);

named_enum!(
    /// What a permission is about.
    Resource {
        Component = "component",
        VersionMap = "version-map",
        Release = "release",
        Environment = "environment",
        RegistryIntegration = "registry-integration",
        CiIntegration = "ci-integration",
        ServiceAccount = "service-account",
        Build = "build",
        Promotion = "promotion",
        SlackUser = "slack-user",
        Subscription = "notification-subscription",
        Agent = "agent",
        DeadLetter = "dead-letter",
    }
);

named_enum!(
    /// What a permission allows.
    Action {
        Read = "read",
        Create = "create",
        Update = "update",
        Delete = "delete",
        Approve = "approve",
    }
);

/// `resource:action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Permission {
    pub resource: Resource,
    pub action: Action,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource, self.action)
    }
}

impl Role {
    /// What the role allows:
    /// - `admin`: everything;
    /// - `viewer`: reading everything but service accounts and dead letters;
    /// - `release-creator`: a viewer who also records versions and builds, creates and
    ///   updates releases and requests promotions (what CI needs);
    /// - `approver`: a viewer who also approves promotions.
    pub fn grants(self, resource: Resource, action: Action) -> bool {
        let viewer = action == Action::Read && !matches!(resource, Resource::ServiceAccount | Resource::DeadLetter);
        match self {
            Role::Admin => true,
            Role::Viewer => viewer,
            Role::ReleaseCreator => {
                viewer
                    || matches!(
                        (resource, action),
                        (Resource::Release, Action::Create | Action::Update)
                            | (Resource::VersionMap, Action::Create)
                            | (Resource::Build, Action::Create)
                            | (Resource::Promotion, Action::Create)
                    )
            }
            Role::Approver => viewer || (resource == Resource::Promotion && action == Action::Approve),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Recorded as `createdBy`: the token's subject.
    pub subject: String,
    pub roles: Vec<Role>,
    pub permissions: Vec<Permission>,
    /// The chat account a request came through, recorded with the principal's decisions.
    pub via: Option<Via>,
}

/// A chat account a principal acts through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Via {
    /// A Slack user of a Slack workspace (team).
    Slack { team: String, user: String },
}

impl Principal {
    /// A principal with roles and nothing else.
    pub fn new(subject: impl Into<String>, roles: Vec<Role>, permissions: Vec<Permission>) -> Self {
        Self { subject: subject.into(), roles, permissions, via: None }
    }

    /// `payload` with `via` added when the principal acts through a chat account.
    pub fn stamp(&self, mut payload: serde_json::Value) -> serde_json::Value {
        if let (Some(via), Some(object)) = (&self.via, payload.as_object_mut()) {
            object.insert("via".into(), serde_json::to_value(via).unwrap_or_default());
        }
        payload
    }

    pub fn can(&self, resource: Resource, action: Action) -> bool {
        self.roles.iter().any(|r| r.grants(resource, action))
            || self.permissions.iter().any(|p| p.resource == resource && p.action == action)
    }

    /// `Forbidden`, naming the missing permission, unless the principal holds it.
    pub fn require(&self, resource: Resource, action: Action) -> Result<()> {
        if self.can(resource, action) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!("{} lacks {}", self.subject, Permission { resource, action })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[Role], permissions: &[Permission]) -> Principal {
        Principal::new("t", roles.to_vec(), permissions.to_vec())
    }

    #[test]
    fn roles_grant_what_they_say() {
        let viewer = principal(&[Role::Viewer], &[]);
        assert!(viewer.can(Resource::Release, Action::Read));
        assert!(!viewer.can(Resource::Release, Action::Create));
        assert!(!viewer.can(Resource::ServiceAccount, Action::Read));
        let creator = principal(&[Role::ReleaseCreator], &[]);
        assert!(creator.can(Resource::Release, Action::Create));
        assert!(creator.can(Resource::Build, Action::Create));
        assert!(!creator.can(Resource::Component, Action::Create));
        assert!(!creator.can(Resource::Release, Action::Delete));
        let approver = principal(&[Role::Approver], &[]);
        assert!(approver.can(Resource::Promotion, Action::Approve));
        assert!(!approver.can(Resource::Release, Action::Create));
        let admin = principal(&[Role::Admin], &[]);
        assert!(Resource::ALL.iter().all(|r| Action::ALL.iter().all(|a| admin.can(*r, *a))));
        assert!(principal(&[], &[]).require(Resource::Release, Action::Read).is_err());
    }

    #[test]
    fn explicit_permissions_add_to_roles() {
        let p = principal(&[Role::Viewer], &[Permission { resource: Resource::Component, action: Action::Create }]);
        assert!(p.can(Resource::Component, Action::Create));
        assert!(!p.can(Resource::Component, Action::Delete));
        let err = p.require(Resource::Component, Action::Delete).unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN");
        assert!(err.to_string().contains("component:delete"));
    }

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), *role);
        }
        assert_eq!("version-map".parse::<Resource>().unwrap(), Resource::VersionMap);
        assert_eq!("superuser".parse::<Role>().unwrap_err().code(), "BAD_USER_INPUT");
    }
}
