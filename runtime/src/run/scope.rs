//! The keys of steps and hook firings ([`Key`]): where each is in the run's code, found the
//! same way on every execution of the run, whatever order `parallel!` polls its branches in.
//!
//! The body's own steps are counted in the order it calls them (`Top(n)`). A `parallel!`
//! group wraps each branch in a [`Branch`], which, while it is polled, stands on this
//! thread's stack of branches; a step that starts looks at that stack and is counted in its
//! innermost branch instead (`"p{group}.{branch}/{n}"`). A branch's code is sequential, so
//! the count is the same on replay; the group takes its own number in the code around it
//! when the first step or firing inside it starts.
//!
//! The stack records, for each branch, the run whose body was being polled when the branch
//! was entered ([`polling`]): a workflow run from inside another's branch keys its steps in
//! its own run only.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use crate::context::{Count, Counters, RunShared};
use crate::types::Key;

thread_local! {
    /// The run whose body this thread is polling (its address; 0 for none).
    static POLLING: Cell<usize> = const { Cell::new(0) };
    /// The `parallel!` branches being polled on this thread, outermost first, each with the
    /// run that was being polled when it was entered.
    static BRANCHES: RefCell<Vec<(usize, Arc<BranchScope>)>> = const { RefCell::new(Vec::new()) };
    /// How many branches `BRANCHES` holds: a step outside any branch looks no further (a
    /// `Cell` without destructor costs a load; the `RefCell`'s key checks its registration).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

fn address(run: &RunShared) -> usize {
    std::ptr::from_ref(run) as usize
}

/// Polls `poll` as the body of `run`: the steps and firings it starts are keyed in `run`.
#[inline]
pub(crate) fn polling<R>(run: &RunShared, poll: impl FnOnce() -> R) -> R {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            POLLING.set(self.0);
        }
    }
    let _restore = Restore(POLLING.replace(address(run)));
    poll()
}

/// The key of a step of `run` that starts now.
#[inline]
pub(crate) fn step_key(run: &RunShared) -> Key {
    in_branch(run, Count::Step).unwrap_or_else(|| Key::Top(run.top(Count::Step)))
}

/// The key of a step (`Count::Step`) or hook firing (`Count::Firing`) of `run` that starts
/// now in a `parallel!` branch; `None` at the run's top level, where the caller counts it in
/// the run's state ([`RunShared::top`], [`RunShared::start_step`]).
#[inline]
pub(crate) fn in_branch(run: &RunShared, count: Count) -> Option<Key> {
    if DEPTH.get() == 0 {
        return None;
    }
    branch_key(run, count)
}

#[cold]
fn branch_key(run: &RunShared, count: Count) -> Option<Key> {
    let me = address(run);
    BRANCHES.with_borrow(|stack| {
        // This run's branches: the innermost ones, entered while its body was polled.
        let start = stack
            .iter()
            .rposition(|(polled, _)| *polled != me)
            .map_or(0, |i| i + 1);
        let ((_, inner), outer) = stack[start..].split_last()?;
        let scope = inner.scope(run, outer);
        Some(run.branch_key(format!("{}{}", scope.prefix, scope.counters.next(count))))
    })
}

/// One `parallel!` group: its number in the code around it, taken when the first step or
/// firing inside it starts.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Group {
    branches: AtomicU32,
    prefix: OnceLock<Arc<str>>,
}

impl Group {
    /// A group, for the branches `parallel!` gives it.
    pub fn new() -> Arc<Group> {
        Arc::default()
    }

    /// Wraps the group's next branch (in the order the macro lists them).
    pub fn branch<F>(self: &Arc<Self>, future: F) -> Branch<F> {
        Branch {
            scope: Arc::new(BranchScope {
                group: Arc::clone(self),
                index: self.branches.fetch_add(1, Ordering::Relaxed),
                scope: OnceLock::new(),
            }),
            future,
        }
    }
}

/// A branch's place: its group, its index, and (once something starts in it) its counters.
#[derive(Debug)]
pub(crate) struct BranchScope {
    group: Arc<Group>,
    index: u32,
    scope: OnceLock<Scope>,
}

#[derive(Debug)]
struct Scope {
    /// What the keys of the branch's steps start with: `"p0.1/"`.
    prefix: Arc<str>,
    counters: Counters,
}

impl BranchScope {
    /// A scope of its own whose keys start with `prefix`, apart from the code around it: what
    /// a transactional step's hook firings are keyed under (the step's key), so that the
    /// body's counts are the same whether the step ran or was replayed.
    pub(crate) fn within_step(prefix: String) -> Arc<BranchScope> {
        Arc::new(BranchScope {
            group: Group::new(),
            index: 0,
            scope: OnceLock::from(Scope {
                prefix: prefix.into(),
                counters: Counters::default(),
            }),
        })
    }

    /// The branch's counters, found first from the branches around it (`outer`, outermost
    /// first) and the run's top level.
    fn scope(&self, run: &RunShared, outer: &[(usize, Arc<BranchScope>)]) -> &Scope {
        self.scope.get_or_init(|| {
            let group = self.group.prefix.get_or_init(|| {
                let (around, group) = match outer.split_last() {
                    None => ("", run.top(Count::Group)),
                    Some(((_, parent), rest)) => {
                        let scope = parent.scope(run, rest);
                        (&*scope.prefix, scope.counters.next(Count::Group))
                    }
                };
                format!("{around}p{group}.").into()
            });
            Scope {
                prefix: format!("{group}{}/", self.index).into(),
                counters: Counters::default(),
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// A `parallel!` branch: while it is polled, what starts in it is keyed in it.
    #[doc(hidden)]
    pub struct Branch<F> {
        scope: Arc<BranchScope>,
        #[pin]
        future: F,
    }
}

impl<F> Branch<F> {
    /// `future`, keyed in `scope` while it is polled.
    pub(crate) fn within(scope: Arc<BranchScope>, future: F) -> Self {
        Branch { scope, future }
    }
}

impl<F: Future> Future for Branch<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        struct Leave;
        impl Drop for Leave {
            fn drop(&mut self) {
                BRANCHES.with_borrow_mut(|stack| stack.pop());
                DEPTH.set(DEPTH.get() - 1);
            }
        }
        let this = self.project();
        BRANCHES.with_borrow_mut(|stack| stack.push((POLLING.get(), Arc::clone(this.scope))));
        DEPTH.set(DEPTH.get() + 1);
        let _leave = Leave;
        this.future.poll(cx)
    }
}
