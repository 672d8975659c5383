//! Layer 6, views: what is drawn or followed from above the engine. Workflows as Mermaid
//! flowcharts ([`Engine::diagram`](crate::Engine::diagram)), journals as Mermaid Gantt and
//! sequence diagrams, and subscriptions to a run's events
//! ([`Engine::subscribe`](crate::Engine::subscribe)).

mod diagram;
mod mermaid;
mod subscribe;

pub use subscribe::RunEvents;
