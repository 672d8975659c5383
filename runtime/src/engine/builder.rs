//! [`EngineBuilder`]: hooks, services, jobs, a store, the workflows to resume, a lease.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::lease::DEFAULT_LEASE;
use super::resume::{Resumer, resumer};
use super::{Engine, EngineInner};
use crate::bus::Bus;
use crate::context::RunEnv;
use crate::hook::Hooks;
use crate::store::{Lease, Store};
#[cfg(feature = "testing")]
use crate::types::FaultPlan;
use crate::types::{DEFAULT_MAX_RECORD_BYTES, Faults, JobDispatcher, Services, default_worker_id};
use crate::workflow::Workflow;

/// Builds an [`Engine`].
///
/// ```
/// # use hookflow_runtime::{Engine, Hooks};
/// struct Db;
/// let engine = Engine::builder()
///     .hooks(Hooks::new())
///     .service(Db)
///     .jobs(|job: hookflow_runtime::Job| println!("enqueue {}", job.name()))
///     .build();
/// # let _ = engine;
/// ```
#[derive(Default)]
pub struct EngineBuilder {
    hooks: Hooks,
    services: Services,
    dispatcher: Option<Box<dyn JobDispatcher>>,
    record_data: bool,
    faults: Faults,
    store: Option<Arc<dyn Store>>,
    resumers: HashMap<(String, u32), Resumer>,
    /// The type registered under each name and version, to refuse a second one.
    registered: HashMap<(String, u32), (std::any::TypeId, &'static str)>,
    worker_id: Option<String>,
    lease: Option<Duration>,
    max_record_bytes: Option<usize>,
    hook_timeout: Option<Duration>,
}

impl EngineBuilder {
    /// The worker id this engine's leases are held under (by default, the process id and
    /// random bits). It must be unique among the live processes sharing the store: a store
    /// lets an engine take back at once the runs its worker id holds (a worker restarted
    /// under the same id resumes its runs without waiting for their leases to lapse).
    #[must_use]
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// How long a lease on a run holds without renewal (default 30 s). A heartbeat renews
    /// the leases of the runs in flight every third of it; if the process dies, its runs are
    /// taken over by other workers once their leases lapse, so the duration bounds how long
    /// a dead worker's runs wait.
    #[must_use]
    pub fn lease(mut self, duration: Duration) -> Self {
        self.lease = Some(duration);
        self
    }

    /// How large one value a durable run records may be, as JSON (default
    /// [`DEFAULT_MAX_RECORD_BYTES`], 16 MiB): the input, the additional data, a step's output
    /// or compensation data, a `before` hook's data, a bag value, a job's payload, the output.
    /// A larger one is refused where it is made: a run whose input is too large is
    /// [`Rejected`](crate::RunStatus::Rejected) before it starts; a run whose step makes a
    /// value too large is parked there ([`RunError::Record`](crate::RunError::Record)). Values
    /// are also refused when nested deeper than [`MAX_DEPTH`](crate::MAX_DEPTH) levels, which
    /// the store could not read back.
    #[must_use]
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.max_record_bytes = Some(bytes);
        self
    }

    /// Makes runs durable: recorded in `store`, committed step by step, resumable. Register
    /// the workflows to resume with [`EngineBuilder::workflow`].
    #[must_use]
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Lets this engine resume stored runs of `W` ([`Engine::resume_pending`]).
    ///
    /// # Panics
    ///
    /// When another workflow type is already registered under `W`'s name and version (as
    /// axum's router panics on overlapping routes): a store finds the workflow of a run to
    /// resume by its name and version, so two types under one would resume each other's
    /// runs. Each instantiation of a generic workflow (`ImportCatalog<Shopify>`,
    /// `ImportCatalog<Magento>`) has the workflow's name: register one of them per engine,
    /// or declare a workflow per catalog.
    #[must_use]
    pub fn workflow<W: Workflow>(mut self) -> Self {
        let key = (W::META.name().to_owned(), W::VERSION);
        let this = (std::any::TypeId::of::<W>(), std::any::type_name::<W>());
        if let Some((other, other_name)) = self.registered.insert(key, this) {
            assert!(
                other == this.0,
                "workflow `{}` version {} is registered twice, as `{}` and as `{}`: a store resumes a run by its workflow's name and version, so each type registered on one engine needs its own (an instantiation of a generic workflow has the generic workflow's name: register one per engine)",
                W::META.name(),
                W::VERSION,
                other_name,
                this.1,
            );
        }
        self.resumers
            .insert((W::META.name().to_owned(), W::VERSION), resumer::<W>());
        self
    }

    /// The hook handlers (the application's and its plugins'). Replaces any set before.
    #[must_use]
    pub fn hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Adds a service, resolved in steps and hooks with `ctx.service::<T>()`. One per type: a
    /// second service of the same type replaces the first.
    #[must_use]
    pub fn service<T: Any + Send + Sync>(mut self, service: T) -> Self {
        self.services.insert(service);
        self
    }

    /// Where the jobs of completed runs go. Without one, they are only listed in the
    /// outcome ([`Outcome::jobs`](crate::Outcome::jobs)).
    #[must_use]
    pub fn jobs(mut self, dispatcher: impl JobDispatcher) -> Self {
        self.dispatcher = Some(Box::new(dispatcher));
        self
    }

    /// Whether the journal records step outputs and compensation data as JSON (off by
    /// default: the in-memory path never serializes them).
    #[must_use]
    pub fn record_data(mut self, record: bool) -> Self {
        self.record_data = record;
        self
    }

    /// Injects faults into steps, hook handlers and compensations: for tests (feature
    /// `testing`; see [`testing`](crate::testing)).
    #[cfg(feature = "testing")]
    #[must_use]
    pub fn faults(mut self, plan: FaultPlan) -> Self {
        self.faults = if plan.is_empty() {
            Faults::default()
        } else {
            Faults::new(Arc::new(plan))
        };
        self
    }

    /// The time limit of every `before`/`after` hook handler registered without one of its
    /// own ([`Registrar::timeout`](crate::Registrar::timeout)). A handler that runs past it
    /// is stopped (its future dropped at the `.await` it is waiting on) and fails with a
    /// [`HandlerTimeout`](crate::HandlerTimeout) naming the handler, the hook and the limit:
    /// a `before` hook aborts the run (completed steps are compensated); an `after` hook's
    /// error is recorded in [`Outcome::hook_errors`](crate::Outcome::hook_errors), nothing
    /// rolled back. A `step` hook's handlers are steps: their limit is their own
    /// `#[step(timeout = "...")]`, not this one.
    ///
    /// By default there is none: a handler stopped half-way may have done half its work,
    /// which only the application can judge safe, and a handler without a limit costs no
    /// timer. Set one (porulle uses 20 s) so that a hung handler cannot hang its runs.
    #[must_use]
    pub fn hook_timeout(mut self, limit: Duration) -> Self {
        self.hook_timeout = Some(limit);
        self
    }

    /// The engine.
    pub fn build(self) -> Engine {
        let lease = Lease {
            owner: self.worker_id.unwrap_or_else(default_worker_id),
            duration: self.lease.unwrap_or(DEFAULT_LEASE),
        };
        let env = RunEnv {
            registry: self.hooks.freeze(self.hook_timeout),
            services: self.services,
            dispatcher: self.dispatcher,
            bus: Bus::default(),
            store: self.store,
            faults: self.faults,
            record_data: self.record_data,
            max_record_bytes: self.max_record_bytes.unwrap_or(DEFAULT_MAX_RECORD_BYTES),
            worker_id: lease.owner.clone(),
        };
        Engine {
            inner: Arc::new(EngineInner {
                env: Arc::new(env),
                resumers: Arc::new(self.resumers),
                in_flight: Arc::default(),
                lease,
                heartbeat: OnceLock::new(),
            }),
        }
    }
}

impl fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("hooks", &self.hooks)
            .field("services", &self.services.len())
            .field("record_data", &self.record_data)
            .finish_non_exhaustive()
    }
}
