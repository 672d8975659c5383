//! Registration: [`Hooks`] collects handlers (the application's and plugins'), the engine
//! freezes them into a [`Registry`] with one table per workflow.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::handler::{
    AfterHandler, BeforeHandler, Erased, ErasedAfter, ErasedBefore, ErasedStepHook, StepHookHandler,
};
use super::{After, Before, HookPoint, StepHook};
use crate::types::Slot;
use crate::workflow::Workflow;

/// The hook handlers of an application and its plugins, before they go into an
/// [`Engine`](crate::Engine).
///
/// ```
/// # use hookflow_runtime::Hooks;
/// let mut hooks = Hooks::new();
/// // Checkout::hooks(&mut hooks).validate(check_minimum).order_created(send_email);
/// // hooks.plugin(LoyaltyPlugin);
/// assert_eq!(hooks.handler_count(), 0);
/// ```
#[derive(Default)]
pub struct Hooks {
    tables: HashMap<TypeId, WorkflowHookTable>,
    /// The plugin whose `register` is running, if any.
    registering: Option<Arc<str>>,
    plugins: Vec<Arc<str>>,
}

impl Hooks {
    /// No handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets `plugin` register its handlers. Within each slot, plugin handlers run after the
    /// application's own, in registration order.
    pub fn plugin<P: Plugin>(&mut self, plugin: P) -> &mut Self {
        let name: Arc<str> = Arc::from(plugin.name());
        let outer = self.registering.replace(Arc::clone(&name));
        plugin.register(self);
        self.registering = outer;
        self.plugins.push(name);
        self
    }

    /// The names of the plugins registered so far, in order.
    pub fn plugins(&self) -> impl Iterator<Item = &str> {
        self.plugins.iter().map(|p| &**p)
    }

    /// How many handlers are registered, on all workflows.
    pub fn handler_count(&self) -> usize {
        self.tables
            .values()
            .map(WorkflowHookTable::handler_count)
            .sum()
    }

    /// The registered handlers of workflow `W`'s hook `hook`, in the order they run:
    /// `(slot, handler name, plugin name)`.
    pub fn handlers_of<W: Workflow>(&self, hook: &str) -> Vec<(Slot, &'static str, Option<&str>)> {
        let Some(table) = self.tables.get(&TypeId::of::<W>()) else {
            return Vec::new();
        };
        W::META
            .hook_index(hook)
            .map_or_else(Vec::new, |index| table.describe(index))
    }

    pub(crate) fn freeze(self) -> Registry {
        Registry {
            tables: self
                .tables
                .into_iter()
                .map(|(k, v)| (k, Arc::new(v)))
                .collect(),
            plugins: self.plugins,
        }
    }

    fn table<W: Workflow>(&mut self) -> &mut WorkflowHookTable {
        self.tables
            .entry(TypeId::of::<W>())
            .or_insert_with(|| WorkflowHookTable::new(W::META.hooks().len() + 1))
    }

    fn add<W: Workflow, H: ?Sized + Send + Sync + 'static>(
        &mut self,
        index: usize,
        slot: Slot,
        name: &'static str,
        handler: Box<H>,
    ) {
        let plugin = self.registering.clone();
        let table = self.table::<W>();
        if table.points.len() <= index {
            table.points.resize_with(index + 1, || None);
        }
        let list = table.points[index].get_or_insert_with(|| Box::new(HandlerList::<H>::new()));
        match list.as_any_mut().downcast_mut::<HandlerList<H>>() {
            Some(list) => list.insert(HandlerEntry {
                name,
                slot,
                plugin,
                handler,
            }),
            // Unreachable: a hook point's index and kind come from the same declaration.
            None => tracing::error!(
                workflow = W::META.name(),
                index,
                "hookflow: handler of another kind registered at the same hook index; ignored"
            ),
        }
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("workflows", &self.tables.len())
            .field("handlers", &self.handler_count())
            .field("plugins", &self.plugins)
            .finish()
    }
}

/// A value that registers handlers on any number of workflows' hooks.
///
/// ```
/// use hookflow_runtime::{Hooks, Plugin};
///
/// struct Audit;
/// impl Plugin for Audit {
///     fn name(&self) -> &str { "audit" }
///     fn register(&self, hooks: &mut Hooks) {
///         // Checkout::hooks(hooks).order_created(audit_order);
///         // Refund::hooks(hooks).refunded(audit_refund);
///     }
/// }
/// let mut hooks = Hooks::new();
/// hooks.plugin(Audit);
/// assert_eq!(hooks.plugins().collect::<Vec<_>>(), ["audit"]);
/// ```
pub trait Plugin: 'static {
    /// The plugin's name, recorded with its handlers' errors.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// Registers the plugin's handlers, as the application does:
    /// `Checkout::hooks(hooks).order_created(handler)`.
    fn register(&self, hooks: &mut Hooks);
}

/// Registers handlers on workflow `W`'s hooks, in one slot at a time.
///
/// `#[workflow]` wraps it in a registrar with one method per hook
/// (`Checkout::hooks(&mut hooks).validate(handler)`); its generic methods take the
/// hook point instead.
pub struct Registrar<'h, W> {
    hooks: &'h mut Hooks,
    slot: Slot,
    _workflow: PhantomData<fn() -> W>,
}

impl<'h, W: Workflow> Registrar<'h, W> {
    /// A registrar for `W`, in the configured slot.
    pub fn new(hooks: &'h mut Hooks) -> Self {
        Registrar {
            hooks,
            slot: Slot::Configured,
            _workflow: PhantomData,
        }
    }

    /// The slot the next handlers go into.
    pub fn slot(&self) -> Slot {
        self.slot
    }

    /// Sets the slot the next handlers go into.
    pub fn set_slot(&mut self, slot: Slot) {
        self.slot = slot;
    }

    /// Registers a `before` handler.
    pub fn before<T, F>(&mut self, point: HookPoint<W, Before<T>>, handler: F)
    where
        T: Send + 'static,
        F: for<'a> BeforeHandler<'a, T>,
    {
        let handler: Box<dyn ErasedBefore<T>> = Box::new(Erased(handler));
        self.hooks.add::<W, _>(
            point.index(),
            self.slot,
            std::any::type_name::<F>(),
            handler,
        );
    }

    /// Registers an `after` handler.
    pub fn after<T, F>(&mut self, point: HookPoint<W, After<T>>, handler: F)
    where
        T: Sync + 'static,
        F: for<'a> AfterHandler<'a, T>,
    {
        let handler: Box<dyn ErasedAfter<T>> = Box::new(Erased(handler));
        self.hooks.add::<W, _>(
            point.index(),
            self.slot,
            std::any::type_name::<F>(),
            handler,
        );
    }

    /// Registers a `step` hook handler (a `#[step]` function).
    pub fn step<T, R, F>(&mut self, point: HookPoint<W, StepHook<T, R>>, handler: F)
    where
        T: Send + 'static,
        R: Send + 'static,
        F: for<'a> StepHookHandler<'a, T, R>,
    {
        let handler: Box<dyn ErasedStepHook<T, R>> = Box::new(Erased(handler));
        self.hooks.add::<W, _>(
            point.index(),
            self.slot,
            std::any::type_name::<F>(),
            handler,
        );
    }
}

impl<W> fmt::Debug for Registrar<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar")
            .field("workflow", &std::any::type_name::<W>())
            .field("slot", &self.slot)
            .finish()
    }
}

/// Hashes a `TypeId` by the bits it already is: the type ids are hashes themselves, so
/// hashing them again (SipHash) on every run would be wasted work.
#[derive(Default)]
pub(crate) struct TypeIdHasher(u64);

impl std::hash::Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8)) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
    fn write_u128(&mut self, n: u128) {
        self.0 ^= (n as u64) ^ ((n >> 64) as u64);
    }
}

type TypeIdMap<V> = HashMap<TypeId, V, std::hash::BuildHasherDefault<TypeIdHasher>>;

/// The frozen handlers of an engine.
#[derive(Default)]
pub(crate) struct Registry {
    tables: TypeIdMap<Arc<WorkflowHookTable>>,
    plugins: Vec<Arc<str>>,
}

impl Registry {
    pub(crate) fn table(&self, workflow: TypeId) -> Option<&Arc<WorkflowHookTable>> {
        self.tables.get(&workflow)
    }

    pub(crate) fn handler_count(&self) -> usize {
        self.tables.values().map(|t| t.handler_count()).sum()
    }

    pub(crate) fn plugins(&self) -> &[Arc<str>] {
        &self.plugins
    }

    /// The handlers of workflow `W`'s hook `hook`, in run order (as [`Hooks::handlers_of`]).
    pub(crate) fn handlers_of<W: Workflow>(
        &self,
        hook: &str,
    ) -> Vec<(Slot, &'static str, Option<&str>)> {
        match (
            self.tables.get(&TypeId::of::<W>()),
            W::META.hook_index(hook),
        ) {
            (Some(table), Some(index)) => table.describe(index),
            _ => Vec::new(),
        }
    }
}

/// One workflow's handlers: for each hook point (by index), its list, if it has handlers.
pub(crate) struct WorkflowHookTable {
    points: Vec<Option<Box<dyn AnyHandlerList>>>,
}

impl WorkflowHookTable {
    fn new(points: usize) -> Self {
        WorkflowHookTable {
            points: (0..points).map(|_| None).collect(),
        }
    }

    fn handler_count(&self) -> usize {
        self.points.iter().flatten().map(|l| l.len()).sum()
    }

    /// The handlers at `index`, in run order: `(slot, handler, plugin)`.
    fn describe(&self, index: usize) -> Vec<(Slot, &'static str, Option<&str>)> {
        self.points
            .get(index)
            .and_then(Option::as_ref)
            .map_or_else(Vec::new, |list| list.describe())
    }

    /// The handlers at `index`, if there are any and they are `H`s.
    pub(crate) fn list<H: ?Sized + 'static>(&self, index: usize) -> Option<&HandlerList<H>> {
        self.points
            .get(index)?
            .as_ref()?
            .as_any()
            .downcast_ref::<HandlerList<H>>()
    }
}

/// A registered handler and where it runs.
pub(crate) struct HandlerEntry<H: ?Sized> {
    pub(crate) name: &'static str,
    pub(crate) slot: Slot,
    pub(crate) plugin: Option<Arc<str>>,
    pub(crate) handler: Box<H>,
}

/// The handlers of one hook point, kept in run order.
pub(crate) struct HandlerList<H: ?Sized> {
    entries: Vec<HandlerEntry<H>>,
}

impl<H: ?Sized> HandlerList<H> {
    fn new() -> Self {
        HandlerList {
            entries: Vec::new(),
        }
    }

    /// Inserts after every entry that runs before it or together with it: by slot, then
    /// application before plugins, then registration order.
    fn insert(&mut self, entry: HandlerEntry<H>) {
        let rank = |e: &HandlerEntry<H>| (e.slot, e.plugin.is_some());
        let new = rank(&entry);
        let at = self.entries.partition_point(|e| rank(e) <= new);
        self.entries.insert(at, entry);
    }

    pub(crate) fn entries(&self) -> &[HandlerEntry<H>] {
        &self.entries
    }
}

trait AnyHandlerList: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn len(&self) -> usize;
    fn describe(&self) -> Vec<(Slot, &'static str, Option<&str>)>;
}

impl<H: ?Sized + Send + Sync + 'static> AnyHandlerList for HandlerList<H> {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn len(&self) -> usize {
        self.entries.len()
    }
    fn describe(&self) -> Vec<(Slot, &'static str, Option<&str>)> {
        self.entries
            .iter()
            .map(|e| (e.slot, e.name, e.plugin.as_deref()))
            .collect()
    }
}
