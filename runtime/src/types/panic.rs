//! Panic capture: a panic inside user code (a step, a hook handler, a compensation) becomes a
//! value that the runtime records, never a torn run.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project_lite::pin_project! {
    /// A future that turns a panic while polling `inner` into `Err(Panic)`.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless awaited"]
    pub struct CatchUnwind<F> {
        #[pin]
        inner: F,
    }
}

impl<F> CatchUnwind<F> {
    /// Wraps `inner`.
    pub fn new(inner: F) -> Self {
        CatchUnwind { inner }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Panic>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(Panic { payload })),
        }
    }
}

/// A panic caught while running user code.
#[doc(hidden)]
pub struct Panic {
    payload: Box<dyn Any + Send>,
}

impl Panic {
    /// A panic that carries `message`, as `panic!("{message}")` would, without unwinding.
    pub(crate) fn new(message: String) -> Self {
        Panic {
            payload: Box::new(message),
        }
    }

    /// The panic's message, when it was a string (as `panic!("...")` makes it).
    pub fn message(&self) -> String {
        message_of(&*self.payload)
    }

    /// Goes on unwinding with the original payload.
    pub fn resume(self) -> ! {
        std::panic::resume_unwind(self.payload)
    }

    pub(crate) fn into_payload(self) -> Box<dyn Any + Send> {
        self.payload
    }
}

impl std::fmt::Debug for Panic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Panic")
            .field("message", &self.message())
            .finish()
    }
}

/// `value`'s `Display`, written into a string made with room for a short message: an error
/// type's `Display` writes its message piece by piece, and `to_string` grows the string at
/// each (21 bytes, then 42 for "step 5 failed at n = 4").
pub(crate) fn message(value: &dyn std::fmt::Display) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(64);
    // Writing to a `String` fails only if `Display` itself reports an error, as `to_string`
    // would panic on; the message then is what was written.
    let _ = write!(s, "{value}");
    s
}

pub(crate) fn message_of(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
