//! The storage behind a run's bag: values of any serde type, one per type, and the values a
//! resumed run restored from its journal, which become typed when first read.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::lock;

/// What the bag can hold: a serde type, because the run's journal records what steps and
/// hook handlers put in the bag, so that a resumed run has it back.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be kept in a run's bag",
    label = "not `Serialize + DeserializeOwned + Send + Sync + 'static`",
    note = "the run's journal records what steps and hook handlers put in the bag, so that a resumed run has it back; derive them: #[derive(serde::Serialize, serde::Deserialize)]"
)]
pub trait BagValue: Serialize + DeserializeOwned + Any + Send + Sync {}
// Not recommended: a type that is not a bag value is reported with `BagValue`'s message, once.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Any + Send + Sync> BagValue for T {}

/// The values of one run's bag.
#[derive(Default)]
pub(crate) struct BagStore {
    inner: Mutex<Values>,
}

#[derive(Default)]
// The maps boxed (clippy's `box_collection`): an empty `HashMap` is 48 bytes, and every run in
// flight holds its bag's room; the box is made with the map's first value.
#[allow(clippy::box_collection)]
struct Values {
    /// By type: the values put in (or read back) in this process. Boxed, as `restored`:
    /// most runs put nothing in the bag, and every run's state holds its room.
    typed: Option<Box<HashMap<TypeId, Typed>>>,
    /// By type name: values restored from the journal, not read as their type yet.
    restored: Option<Box<HashMap<String, Value>>>,
}

struct Typed {
    name: &'static str,
    value: Box<dyn Any + Send + Sync>,
    /// The value as JSON (what [`BagStore::to_json`] shows).
    json: fn(&(dyn Any + Send + Sync)) -> Option<Value>,
}

impl Typed {
    fn new<T: BagValue>(value: T) -> Self {
        Typed {
            name: std::any::type_name::<T>(),
            value: Box::new(value),
            json: |value| {
                value
                    .downcast_ref::<T>()
                    .and_then(|v| serde_json::to_value(v).ok())
            },
        }
    }
}

impl BagStore {
    /// Stores `value`, returning the value of that type stored before, if any.
    pub(crate) fn insert<T: BagValue>(&self, value: T) -> Option<T> {
        let mut values = lock(&self.inner);
        let old = values.take_typed::<T>();
        values
            .typed
            .get_or_insert_with(Box::default)
            .insert(TypeId::of::<T>(), Typed::new(value));
        old
    }

    /// Calls `f` with a reference to the stored value of type `T`, while the bag is locked.
    pub(crate) fn with<T: BagValue, R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        let mut values = lock(&self.inner);
        values.read_restored::<T>();
        f(values
            .typed
            .as_ref()
            .and_then(|m| m.get(&TypeId::of::<T>()))
            .and_then(|t| t.value.downcast_ref::<T>()))
    }

    /// Changes the stored value of type `T` in place (from `T::default()` if there is none)
    /// and calls `after` with it, while the bag is locked.
    pub(crate) fn update<T: BagValue + Default, R>(
        &self,
        f: impl FnOnce(&mut T) -> R,
        after: impl FnOnce(&T),
    ) -> R {
        let mut values = lock(&self.inner);
        values.read_restored::<T>();
        let slot = values
            .typed
            .get_or_insert_with(Box::default)
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Typed::new(T::default()));
        match slot.value.downcast_mut::<T>() {
            Some(value) => {
                let result = f(value);
                after(value);
                result
            }
            // Unreachable: values are stored under their own type's id.
            None => f(&mut T::default()),
        }
    }

    /// Removes and returns the stored value of type `T`.
    pub(crate) fn take<T: BagValue>(&self) -> Option<T> {
        let mut values = lock(&self.inner);
        values.read_restored::<T>();
        values.take_typed::<T>()
    }

    /// Puts back what the journal recorded of the value whose type is named `name`: `Some`
    /// the value it was set to, `None` taken out. Read as its type when first asked for.
    pub(crate) fn restore(&self, name: &str, value: Option<Value>) {
        let mut values = lock(&self.inner);
        if let Some(typed) = values.typed.as_mut() {
            typed.retain(|_, t| t.name != name);
        }
        let restored = values.restored.get_or_insert_with(Box::default);
        match value {
            Some(value) => {
                restored.insert(name.to_owned(), value);
            }
            None => {
                restored.remove(name);
            }
        }
    }

    /// Moves the values out, leaving the bag empty: what a run's outcome keeps of its bag
    /// (`None` if it holds nothing).
    pub(crate) fn take_all(&self) -> Option<Box<BagStore>> {
        let values = std::mem::take(&mut *lock(&self.inner));
        if values.typed.is_none() && values.restored.is_none() {
            return None;
        }
        Some(Box::new(BagStore {
            inner: Mutex::new(values),
        }))
    }

    /// Every value, as JSON, by the name of its type (`std::any::type_name`), whether it was
    /// put in by this process or restored from the journal.
    pub(crate) fn to_json(&self) -> BTreeMap<String, Value> {
        let values = lock(&self.inner);
        let typed = values
            .typed
            .iter()
            .flat_map(|m| m.iter())
            .filter_map(|(_, t)| {
                let json = (t.json)(&*t.value)?;
                Some((t.name.to_owned(), json))
            });
        let restored = values
            .restored
            .iter()
            .flat_map(|m| m.iter())
            .map(|(k, v)| (k.clone(), v.clone()));
        typed.chain(restored).collect()
    }

    /// How many values the bag holds.
    pub(crate) fn len(&self) -> usize {
        let values = lock(&self.inner);
        values.typed.as_ref().map_or(0, |m| m.len())
            + values.restored.as_ref().map_or(0, |m| m.len())
    }
}

impl Values {
    fn take_typed<T: 'static>(&mut self) -> Option<T> {
        self.typed
            .as_mut()
            .and_then(|m| m.remove(&TypeId::of::<T>()))
            .and_then(|t| t.value.downcast::<T>().ok().map(|b| *b))
    }

    /// Reads a restored value of type `T` as a `T`, once.
    fn read_restored<T: BagValue>(&mut self) {
        let Some(restored) = self.restored.as_mut() else {
            return;
        };
        let name = std::any::type_name::<T>();
        let Some(json) = restored.remove(name) else {
            return;
        };
        match serde_json::from_value::<T>(json) {
            Ok(value) => {
                self.typed
                    .get_or_insert_with(Box::default)
                    .insert(TypeId::of::<T>(), Typed::new(value));
            }
            Err(error) => tracing::error!(
                %error,
                r#type = name,
                "hookflow: a bag value restored from the journal no longer reads as its type; it is dropped"
            ),
        }
    }
}
