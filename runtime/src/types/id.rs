//! Identifiers: a run's id and a worker's.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A run's unique id (a UUID v7: ordered by start time).
///
/// ```
/// # use hookflow_runtime::RunId;
/// let id = RunId::parse("01a21009-8e2e-7596-a1ac-4dd0bb5fdced").unwrap();
/// assert_eq!(id.as_uuid().get_version_num(), 7);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(uuid::Uuid);

impl RunId {
    /// A UUID v7: the current Unix millisecond, then a 74-bit value that starts at a random
    /// point in each millisecond and counts up within it, per thread. So ids are ordered by
    /// start time (and by start order within a thread), and no system call or lock shared
    /// between threads is paid per run.
    pub(crate) fn new() -> Self {
        Self::at(super::now_micros())
    }

    /// A new id made at `now_micros`, a reading of the journal's clock
    /// ([`now_micros`](super::now_micros)) just taken: a run started in place records its
    /// start with the same reading.
    pub(crate) fn at(now_micros: u64) -> Self {
        use std::cell::Cell;
        use std::hash::{BuildHasher, Hasher};
        thread_local! {
            // (xorshift state, last millisecond, counter within it)
            static STATE: Cell<(u64, u64, u128)> = Cell::new((
                std::collections::hash_map::RandomState::new().build_hasher().finish() | 1,
                0,
                0,
            ));
        }
        // The journal's clock (`SystemTime` adds a checked subtraction and 128-bit arithmetic
        // to every run's start).
        let millis = now_micros / 1_000;
        let counter = STATE.with(|state| {
            let (mut x, last, counter) = state.get();
            let counter = if millis == last {
                counter + 1
            } else {
                // xorshift64*: a random start in the low 62 bits leaves room to count up.
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                u128::from(x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 2)
            };
            state.set((x, millis, counter));
            counter
        });
        let rand_a = (counter >> 62) as u16 & 0x0FFF;
        let rand_b = (counter as u64) & ((1 << 62) - 1);
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        bytes[6..8].copy_from_slice(&(0x7000 | rand_a).to_be_bytes());
        bytes[8..].copy_from_slice(&((0b10 << 62) | rand_b).to_be_bytes());
        RunId(uuid::Uuid::from_bytes(bytes))
    }

    /// A new id, for a run to be started with [`RunOptions::run_id`](crate::RunOptions::run_id)
    /// (so that it can be followed with [`Engine::subscribe`](crate::Engine::subscribe) from
    /// its first event).
    pub fn generate() -> Self {
        Self::new()
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }

    /// The id written as `to_string` writes it.
    ///
    /// # Errors
    /// When `s` is not a UUID.
    pub fn parse(s: &str) -> Result<Self, uuid::Error> {
        uuid::Uuid::parse_str(s).map(RunId)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A worker id for an engine that was not given one: the process id and random bits, unique
/// among the processes sharing a store.
pub(crate) fn default_worker_id() -> String {
    let random = RunId::new().to_string();
    let tail = &random[random.len().saturating_sub(8)..];
    format!("pid{}-{tail}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::RunId;

    #[test]
    fn run_ids_are_v7_and_ordered() {
        let ids: Vec<RunId> = (0..10_000).map(|_| RunId::new()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
        for id in &ids {
            assert_eq!(id.as_uuid().get_version_num(), 7);
            assert_eq!(id.as_uuid().get_variant(), uuid::Variant::RFC4122);
            assert_eq!(RunId::parse(&id.to_string()).unwrap(), *id);
        }
    }

    /// The UUID v7 timestamp: the Unix millisecond the id was made in, as `SystemTime` says.
    #[test]
    fn a_new_id_carries_the_current_unix_millisecond() {
        let now = || {
            let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            u64::try_from(since.unwrap().as_millis()).unwrap()
        };
        let before = now();
        let id = RunId::new();
        let after = now();
        let mut millis = [0u8; 8];
        millis[2..].copy_from_slice(&id.as_uuid().as_bytes()[..6]);
        let millis = u64::from_be_bytes(millis);
        assert!(
            before <= millis && millis <= after,
            "{before} <= {millis} <= {after}"
        );
    }
}
