//! Parallel branches: `parallel!(step_a(ctx, x), step_b(ctx, y))`.

use crate::types::Panic;

/// Runs branches (futures, typically step calls) concurrently in the workflow's task and
/// waits for **all** of them, then returns `Ok` with every output in a tuple, or the first
/// error in branch order.
///
/// A failing branch does not cancel its siblings: the ones already running finish (nothing is
/// torn halfway), and every step that completed, in any branch, has its compensation on the
/// run's stack. So when the workflow then fails, all of them are compensated, in reverse
/// order of completion. A panicking branch also lets its siblings finish, then fails the run.
///
/// Every branch returns `Result<_, E>` with the same `E`.
///
/// A resumed run replays each branch's steps as they were recorded, whatever order the
/// branches start them in this time: a step is known by its branch and its place in it, not
/// by when it started. Steps run concurrently by other means (`tokio::join!`, `select!`, a
/// spawned task) are known by the order they start in, which a replay need not repeat: run
/// concurrent steps with `parallel!`.
///
/// See the `hookflow` crate for an example.
#[macro_export]
macro_rules! parallel {
    ($($branch:expr),+ $(,)?) => {{
        let group = $crate::__private::Group::new();
        $crate::__private::Settle::settle($crate::__private::join!(
            $($crate::__private::CatchUnwind::new(group.branch($branch))),+
        ))
    }};
}

/// Turns the joined results of `parallel!` branches into one `Result`.
#[doc(hidden)]
pub trait Settle {
    type Output;
    fn settle(self) -> Self::Output;
}

macro_rules! impl_settle {
    ($($t:ident $r:ident),+) => {
        impl<E, $($t),+> Settle for ($(Result<Result<$t, E>, Panic>,)+) {
            type Output = Result<($($t,)+), E>;
            #[allow(non_snake_case)]
            fn settle(self) -> Self::Output {
                let ($($r,)+) = self;
                // A panic wins over errors: it fails the run whatever the body does.
                $(let $r = match $r { Ok(r) => r, Err(panic) => panic.resume() };)+
                Ok(($($r?,)+))
            }
        }
    };
}

impl_settle!(A a);
impl_settle!(A a, B b);
impl_settle!(A a, B b, C c);
impl_settle!(A a, B b, C c, D d);
impl_settle!(A a, B b, C c, D d, F f);
impl_settle!(A a, B b, C c, D d, F f, G g);
impl_settle!(A a, B b, C c, D d, F f, G g, H h);
impl_settle!(A a, B b, C c, D d, F f, G g, H h, I i);
