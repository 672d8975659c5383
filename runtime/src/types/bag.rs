//! A typed bag that steps and hooks use to pass values along one run.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Mutex;

/// Values of any type, one per type, shared by every step and hook handler of one run.
///
/// Reach it with `ctx.bag()`. A hook handler can leave a value for a later step, or the
/// workflow body can leave the order id for an `on_compensation_failed` handler.
///
/// ```
/// # use hookflow_runtime::Bag;
/// #[derive(Clone, Debug, PartialEq)]
/// struct GiftCard(u64);
///
/// let bag = Bag::default();
/// assert_eq!(bag.insert(GiftCard(500)), None);
/// assert_eq!(bag.get::<GiftCard>(), Some(GiftCard(500)));
/// assert_eq!(bag.take::<GiftCard>(), Some(GiftCard(500)));
/// assert!(!bag.contains::<GiftCard>());
///
/// bag.update(|seen: &mut Vec<&str>| seen.push("validate"));
/// bag.update(|seen: &mut Vec<&str>| seen.push("reserve"));
/// assert_eq!(bag.get::<Vec<&str>>(), Some(vec!["validate", "reserve"]));
/// ```
#[derive(Default)]
pub struct Bag {
    values: Mutex<Option<HashMap<TypeId, Box<dyn Any + Send + Sync>>>>,
}

impl Bag {
    /// Stores `value`, returning the value of that type stored before, if any.
    pub fn insert<T: Any + Send + Sync>(&self, value: T) -> Option<T> {
        let mut values = crate::types::lock(&self.values);
        values
            .get_or_insert_with(HashMap::new)
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// A clone of the stored value of type `T`.
    pub fn get<T: Any + Send + Sync + Clone>(&self) -> Option<T> {
        self.with(|v: Option<&T>| v.cloned())
    }

    /// Calls `f` with a reference to the stored value of type `T` (no clone).
    ///
    /// The bag is locked while `f` runs: do not touch the bag from `f`.
    pub fn with<T: Any + Send + Sync, R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        let values = crate::types::lock(&self.values);
        f(values
            .as_ref()
            .and_then(|m| m.get(&TypeId::of::<T>()))
            .and_then(|b| b.downcast_ref::<T>()))
    }

    /// Changes the stored value of type `T` in place (starting from `T::default()` if there
    /// is none), atomically with respect to other steps of the run, and returns what `f`
    /// returns.
    ///
    /// The bag is locked while `f` runs: do not touch the bag from `f`.
    pub fn update<T: Any + Send + Sync + Default, R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut values = crate::types::lock(&self.values);
        let slot = values
            .get_or_insert_with(HashMap::new)
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()));
        match slot.downcast_mut::<T>() {
            Some(value) => f(value),
            // Unreachable: values are stored under their own type's id.
            None => f(&mut T::default()),
        }
    }

    /// Removes and returns the stored value of type `T`.
    pub fn take<T: Any + Send + Sync>(&self) -> Option<T> {
        let mut values = crate::types::lock(&self.values);
        values
            .as_mut()
            .and_then(|m| m.remove(&TypeId::of::<T>()))
            .and_then(|b| b.downcast::<T>().ok().map(|b| *b))
    }

    /// Whether a value of type `T` is stored.
    pub fn contains<T: Any + Send + Sync>(&self) -> bool {
        self.with(|v: Option<&T>| v.is_some())
    }
}

impl std::fmt::Debug for Bag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = crate::types::lock(&self.values)
            .as_ref()
            .map_or(0, HashMap::len);
        f.debug_struct("Bag").field("values", &len).finish()
    }
}
