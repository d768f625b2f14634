//! The typed operations of `graphql/operations.graphql`, generated and checked against
//! `schema.graphql` at build time.

#![allow(clippy::all, missing_docs)]

use graphql_client::GraphQLQuery;

pub type DateTime = String;
pub type Date = String;
#[allow(clippy::upper_case_acronyms)]
pub type JSON = serde_json::Value;

macro_rules! operation {
    ($name:ident) => {
        #[derive(GraphQLQuery)]
        #[graphql(
            schema_path = "../schema.graphql",
            query_path = "graphql/operations.graphql",
            response_derives = "Debug, Clone",
            variables_derives = "Debug, Clone"
        )]
        pub struct $name;
    };
}

operation!(Components);
operation!(Versions);
operation!(Environments);
operation!(Releases);
operation!(Release);
operation!(Compare);
operation!(CreateRelease);
operation!(MarkReady);
operation!(Promote);
operation!(Approve);
operation!(Reject);
operation!(Rollback);
operation!(Progress);
operation!(Abort);
operation!(PromoteFull);
operation!(VerifyEvidence);
operation!(Agents);
operation!(RevokeAgent);
operation!(EvaluatePolicy);
operation!(EvidenceBundle);
operation!(Insights);
operation!(DeadLetterQueues);
operation!(RedriveDeadLetters);
