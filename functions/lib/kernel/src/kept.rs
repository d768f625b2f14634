//! What a process keeps between requests: a map shared by clones, bounded by emptying it when
//! it is full (whatever it held is read again, once, when next needed).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Kept<K, V> {
    items: Arc<Mutex<HashMap<K, V>>>,
    max: usize,
}

impl<K: Eq + Hash, V: Clone> Kept<K, V> {
    /// Keeps at most `max` items.
    pub fn new(max: usize) -> Self {
        Self { items: Arc::default(), max: max.max(1) }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.lock().get(key).cloned()
    }

    pub fn keep(&self, key: K, value: V) {
        self.insert(&mut self.lock(), key, value);
    }

    /// The value kept under `key`, or `make()` kept there now, in one step: concurrent
    /// callers get the same value (a shared cell, say, that the first of them fills).
    pub fn get_or_keep(&self, key: K, make: impl FnOnce() -> V) -> V {
        let mut items = self.lock();
        if let Some(value) = items.get(&key) {
            return value.clone();
        }
        let value = make();
        self.insert(&mut items, key, value.clone());
        value
    }

    pub fn forget(&self, key: &K) {
        self.lock().remove(key);
    }

    /// Inserts into the locked map, emptying it first when it is full and `key` is new.
    fn insert(&self, items: &mut HashMap<K, V>, key: K, value: V) {
        if items.len() >= self.max && !items.contains_key(&key) {
            items.clear();
        }
        items.insert(key, value);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
        // A panic while holding the lock left a map, not a broken invariant.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::Kept;

    #[test]
    fn clones_share_what_is_kept_and_it_stays_bounded() {
        let kept = Kept::new(2);
        let other = kept.clone();
        kept.keep(1, "a");
        assert_eq!(other.get(&1), Some("a"));
        kept.keep(2, "b");
        kept.keep(2, "c");
        assert_eq!((kept.get(&1), kept.get(&2)), (Some("a"), Some("c")), "replacing a key empties nothing");
        kept.keep(3, "d");
        assert_eq!((kept.get(&1), kept.get(&2), kept.get(&3)), (None, None, Some("d")), "full: emptied first");
        kept.forget(&3);
        assert_eq!(kept.get(&3), None);
    }

    #[test]
    fn get_or_keep_makes_a_value_once_and_stays_bounded() {
        let kept = Kept::new(2);
        let mut made = 0;
        for _ in 0..3 {
            kept.get_or_keep(1, || {
                made += 1;
                "a"
            });
        }
        assert_eq!((made, kept.get(&1)), (1, Some("a")), "made once, then kept");
        assert_eq!(kept.get_or_keep(2, || "b"), "b");
        assert_eq!(kept.get_or_keep(3, || "c"), "c");
        assert_eq!((kept.get(&1), kept.get(&2)), (None, None), "full: emptied before the third");
    }
}
