//! Registration: [`Hooks`] collects handlers (the application's and plugins'), the engine
//! freezes them into a [`Registry`] with one table per workflow.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::handler::{
    AfterHandler, AfterResultHandler, BeforeHandler, Erased, ErasedAfter, ErasedAfterResult,
    ErasedBefore, ErasedStepHook, StepHookHandler,
};
use super::name::default_name;
use super::{After, AfterResult, Before, HookPoint, StepHook};
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
    /// How many handlers were registered, on all workflows: the next one's number.
    registered: u64,
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

    /// The engine's handlers, each `before`/`after` one without its own time limit given
    /// `timeout` (the engine's default), if any.
    pub(crate) fn freeze(self, timeout: Option<Duration>) -> Registry {
        Registry {
            tables: self
                .tables
                .into_iter()
                .map(|(k, mut v)| {
                    if let Some(timeout) = timeout {
                        for list in v.points.iter_mut().flatten() {
                            list.default_timeout(timeout);
                        }
                    }
                    (k, Arc::new(v))
                })
                .collect(),
            plugins: self.plugins,
        }
    }

    fn table<W: Workflow>(&mut self) -> &mut WorkflowHookTable {
        self.tables
            .entry(TypeId::of::<W>())
            .or_insert_with(|| WorkflowHookTable::new(W::META.hooks().len() + 1))
    }

    /// Adds a handler at hook `index` of `W`, named `name` or, if `None`, by default (given
    /// how many handlers the hook has with it); returns its number, by which
    /// [`Hooks::options`] finds it.
    fn add<W: Workflow, H: ?Sized + Send + Sync + 'static>(
        &mut self,
        index: usize,
        slot: Slot,
        name: impl FnOnce(usize) -> &'static str,
        handler: Box<H>,
    ) -> u64 {
        self.registered += 1;
        let seq = self.registered;
        let plugin = self.registering.clone();
        let table = self.table::<W>();
        if table.points.len() <= index {
            table.points.resize_with(index + 1, || None);
        }
        let list = table.points[index].get_or_insert_with(|| Box::new(HandlerList::<H>::new()));
        let name = name(list.len() + 1);
        match list.as_any_mut().downcast_mut::<HandlerList<H>>() {
            Some(list) => list.insert(HandlerEntry {
                name,
                slot,
                plugin,
                timeout: None,
                seq,
                handler,
            }),
            // Unreachable: a hook point's index and kind come from the same declaration.
            None => tracing::error!(
                workflow = W::META.name(),
                index,
                "hookflow: handler of another kind registered at the same hook index; ignored"
            ),
        }
        seq
    }

    /// The name and time limit of handler number `seq` at hook `index` of `W`.
    fn options<W: Workflow>(
        &mut self,
        index: usize,
        seq: u64,
    ) -> Option<(&mut &'static str, &mut Option<Duration>)> {
        self.tables
            .get_mut(&TypeId::of::<W>())?
            .points
            .get_mut(index)?
            .as_mut()?
            .options(seq)
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

/// Registers handlers on workflow `W`'s hooks.
///
/// `#[workflow]` wraps it in a registrar with one method per hook
/// (`Checkout::hooks(&mut hooks).validate(handler)`); its generic methods take the
/// hook point instead.
///
/// Modifiers never carry over to later registrations:
/// - the slot ([`Registrar::set_slot`], the generated `.prepended()`/`.appended()`) applies
///   to the next handler registered only; the one after goes into the configured slot
///   again unless a slot is chosen for it too;
/// - [`Registrar::named`] and [`Registrar::timeout`] apply to the handler registered just
///   before them.
///
/// ```text
/// Checkout::hooks(&mut hooks)
///     .prepended().validate(check_fraud)          // prepended
///     .validate(check_minimum).named("minimum")   // configured, named "minimum"
///     .order_created(notify).timeout(Duration::from_secs(5));
/// ```
pub struct Registrar<'h, W> {
    hooks: &'h mut Hooks,
    slot: Slot,
    /// The handler registered last: its hook's index, its number, whether it is a step.
    last: Option<(usize, u64, bool)>,
    _workflow: PhantomData<fn() -> W>,
}

impl<'h, W: Workflow> Registrar<'h, W> {
    /// A registrar for `W`, in the configured slot.
    pub fn new(hooks: &'h mut Hooks) -> Self {
        Registrar {
            hooks,
            slot: Slot::Configured,
            last: None,
            _workflow: PhantomData,
        }
    }

    /// The slot the next handler goes into.
    pub fn slot(&self) -> Slot {
        self.slot
    }

    /// Sets the slot the next handler goes into (that one only: the handler after it goes
    /// into the configured slot unless this is called again).
    pub fn set_slot(&mut self, slot: Slot) {
        self.slot = slot;
    }

    /// Names the handler registered just before: the name its runs' journals record, which a
    /// resumed run compares with the engine's handlers, and which the CLI, the diagrams and
    /// [`HookError::handler`](crate::HookError::handler) show. Give one to every handler whose
    /// runs may be resumed by another build: it never changes unless you change it.
    ///
    /// Without it, the name is the function's own identifier (`check_minimum` for
    /// `shop::hooks::check_minimum`), taken from `std::any::type_name`, whose format the
    /// compiler does not promise; for a closure or a generic function, it is
    /// `"{hook}#{n}"`, the `n`th handler registered on the hook. Renaming the function (or
    /// registering handlers in another order, for the second form) renames the handler.
    ///
    /// With no handler registered before it on this registrar, it does nothing (and logs an
    /// error).
    pub fn named(&mut self, name: &'static str) {
        if let Some((named, _)) = self.last_options("named") {
            *named = name;
        }
    }

    /// Gives the handler registered just before a time limit of its own, instead of the
    /// engine's ([`EngineBuilder::hook_timeout`](crate::EngineBuilder::hook_timeout)). A
    /// `before`/`after` handler that runs past it is stopped and fails with a
    /// [`HandlerTimeout`](crate::HandlerTimeout), as for any error of its hook's kind: a
    /// `before` hook aborts the run (completed steps are compensated); an `after` hook's
    /// error is recorded and nothing is rolled back.
    ///
    /// A `step` hook's handlers are steps: their time limit is their own
    /// `#[step(timeout = "...")]`, and this does nothing for them (it logs an error). With no
    /// handler registered before it on this registrar, it does nothing either.
    pub fn timeout(&mut self, limit: Duration) {
        if let Some((_, _, true)) = self.last {
            tracing::error!(
                workflow = W::META.name(),
                "hookflow: `.timeout(..)` after a `step` hook handler does nothing; give the step `#[step(timeout = \"...\")]`"
            );
            return;
        }
        if let Some((_, timeout)) = self.last_options("timeout") {
            *timeout = Some(limit);
        }
    }

    fn last_options(&mut self, what: &str) -> Option<(&mut &'static str, &mut Option<Duration>)> {
        let Some((index, seq, _)) = self.last else {
            tracing::error!(
                workflow = W::META.name(),
                "hookflow: `.{what}(..)` before any handler was registered on this registrar; it applies to the handler registered just before it"
            );
            return None;
        };
        self.hooks.options::<W>(index, seq)
    }

    /// Adds a handler in the chosen slot, which then goes back to the configured one.
    fn add<H: ?Sized + Send + Sync + 'static, F>(
        &mut self,
        index: usize,
        hook: &'static str,
        handler: Box<H>,
        step: bool,
    ) {
        let slot = std::mem::replace(&mut self.slot, Slot::Configured);
        let name = |n| default_name::<F>(hook, n);
        let seq = self.hooks.add::<W, H>(index, slot, name, handler);
        self.last = Some((index, seq, step));
    }

    /// Registers a `before` handler.
    pub fn before<T, F>(&mut self, point: HookPoint<W, Before<T>>, handler: F)
    where
        T: Send + 'static,
        F: for<'a> BeforeHandler<'a, T>,
    {
        let handler: Box<dyn ErasedBefore<T>> = Box::new(Erased(handler));
        self.add::<_, F>(point.index(), point.name(), handler, false);
    }

    /// Registers an `after` handler.
    pub fn after<T, F>(&mut self, point: HookPoint<W, After<T>>, handler: F)
    where
        T: Sync + 'static,
        F: for<'a> AfterHandler<'a, T>,
    {
        let handler: Box<dyn ErasedAfter<T>> = Box::new(Erased(handler));
        self.add::<_, F>(point.index(), point.name(), handler, false);
    }

    /// Registers an `after<I, O>` handler, which observes the input and the result.
    pub fn after_result<I, O, F>(&mut self, point: HookPoint<W, AfterResult<I, O>>, handler: F)
    where
        I: Sync + 'static,
        O: Sync + 'static,
        F: for<'a> AfterResultHandler<'a, I, O>,
    {
        let handler: Box<dyn ErasedAfterResult<I, O>> = Box::new(Erased(handler));
        self.add::<_, F>(point.index(), point.name(), handler, false);
    }

    /// Registers a `step` hook handler (a `#[step]` function).
    pub fn step<T, R, F>(&mut self, point: HookPoint<W, StepHook<T, R>>, handler: F)
    where
        T: Send + 'static,
        R: Send + 'static,
        F: for<'a> StepHookHandler<'a, T, R>,
    {
        let handler: Box<dyn ErasedStepHook<T, R>> = Box::new(Erased(handler));
        self.add::<_, F>(point.index(), point.name(), handler, true);
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
    /// Whether any handler was registered at `index`: when not, [`list`](Self::list) is
    /// `None` whatever the handler type. Never looks at the handlers themselves.
    #[inline]
    pub(crate) fn has_handlers(&self, index: usize) -> bool {
        matches!(self.points.get(index), Some(Some(_)))
    }

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
    /// Its time limit (`before`/`after` handlers): its own, or the engine's.
    pub(crate) timeout: Option<Duration>,
    /// Its number among the registrations.
    seq: u64,
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
    fn options(&mut self, seq: u64) -> Option<(&mut &'static str, &mut Option<Duration>)>;
    fn default_timeout(&mut self, timeout: Duration);
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
    fn options(&mut self, seq: u64) -> Option<(&mut &'static str, &mut Option<Duration>)> {
        let entry = self.entries.iter_mut().find(|e| e.seq == seq)?;
        Some((&mut entry.name, &mut entry.timeout))
    }
    fn default_timeout(&mut self, timeout: Duration) {
        for entry in &mut self.entries {
            entry.timeout.get_or_insert(timeout);
        }
    }
}
