//! Every aggregate's id type, in one place every module imports from.

macro_rules! id_type {
    ($name:ident, $what:literal) => {
        #[doc = concat!("The id of a ", $what, ": a UUID.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $crate::uuid::Uuid);

        impl $name {
            pub fn new() -> Self {
                Self($crate::uuid::Uuid::new_v4())
            }

            pub fn parse(raw: &str) -> $crate::Result<Self> {
                $crate::uuid::Uuid::parse_str(raw.trim())
                    .map(Self)
                    .map_err(|_| $crate::DomainError::validation(format!("{} id {raw:?} is not a UUID", $what)))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(ComponentId, "component");
id_type!(VersionMapId, "version map");
id_type!(ReleaseId, "release");
id_type!(EnvironmentId, "environment");
id_type!(IntegrationId, "registry integration");
id_type!(ServiceAccountId, "service account");
id_type!(TargetId, "deployment target");
id_type!(PromotionId, "promotion");
id_type!(EvidenceId, "evidence record");
id_type!(CiIntegrationId, "CI integration");
id_type!(SubscriptionId, "notification subscription");
id_type!(EventId, "notification event");
id_type!(AgentId, "pull agent");
