//! Typed services registered on the engine and resolved from any context.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use crate::types::MissingService;

/// The engine's services, one per type: a database pool, a payment client, a clock...
#[derive(Default, Clone)]
pub(crate) struct Services {
    by_type: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Services {
    pub(crate) fn insert<T: Any + Send + Sync>(&mut self, service: T) {
        self.by_type.insert(TypeId::of::<T>(), Arc::new(service));
    }

    pub(crate) fn get<T: Any + Send + Sync>(&self) -> Result<&T, MissingService> {
        self.by_type
            .get(&TypeId::of::<T>())
            .and_then(|s| s.downcast_ref::<T>())
            .ok_or(MissingService {
                type_name: std::any::type_name::<T>(),
            })
    }

    pub(crate) fn len(&self) -> usize {
        self.by_type.len()
    }
}
