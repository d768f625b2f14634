//! How many storage requests one client request may make. The GraphQL adapter runs each
//! request inside [`within`]; the store charges every DynamoDB request to the budget of the
//! task it runs on, and refuses once the budget is spent. Work outside a budget (workers,
//! webhooks) is not counted.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::DomainError;

tokio::task_local! {
    static BUDGET: Arc<Budget>;
}

/// A request's allowance of storage requests.
#[derive(Debug)]
pub struct Budget {
    limit: u32,
    used: AtomicU32,
}

impl Budget {
    pub fn new(limit: u32) -> Arc<Self> {
        Arc::new(Self { limit, used: AtomicU32::new(0) })
    }

    /// Storage requests made so far.
    pub fn used(&self) -> u32 {
        self.used.load(Ordering::Relaxed).min(self.limit)
    }

    fn spent(&self) -> bool {
        self.used.load(Ordering::Relaxed) > self.limit
    }

    fn error(&self) -> DomainError {
        DomainError::validation(format!(
            "the request needs more than {} storage reads; ask for fewer items (a smaller `first` or `limit`, fewer aliases)",
            self.limit
        ))
    }
}

/// Runs `work` with `budget` as the budget of its task.
pub async fn within<F: Future>(budget: Arc<Budget>, work: F) -> F::Output {
    BUDGET.scope(budget, work).await
}

/// The budget of the running task, to hand on to tasks it spawns.
pub fn current() -> Option<Arc<Budget>> {
    BUDGET.try_with(Arc::clone).ok()
}

/// Charges one storage request to the running task's budget: `Err` once it is spent.
pub fn charge() -> Result<(), DomainError> {
    BUDGET
        .try_with(|b| if b.used.fetch_add(1, Ordering::Relaxed) >= b.limit { Err(b.error()) } else { Ok(()) })
        .unwrap_or(Ok(()))
}

/// The refusal, when the running task's budget is spent; a failed storage request is
/// reported as this rather than as an internal error.
pub fn refusal() -> Option<DomainError> {
    BUDGET.try_with(|b| b.spent().then(|| b.error())).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_budget_is_spent_after_its_limit() {
        assert!(charge().is_ok() && refusal().is_none(), "no budget outside a request");
        let budget = Budget::new(2);
        let outcome = within(budget.clone(), async {
            let charges = [charge(), charge(), charge()];
            (charges, refusal(), current().is_some())
        })
        .await;
        assert!(outcome.0[0].is_ok() && outcome.0[1].is_ok());
        assert!(matches!(&outcome.0[2], Err(DomainError::Validation(m)) if m.contains("more than 2 storage reads")));
        assert!(outcome.1.is_some() && outcome.2);
        assert_eq!(budget.used(), 2);
    }
}
