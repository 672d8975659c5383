//! A commit's journal events as they are stored: their JSON, written once into one buffer
//! (the statement binds each event's slice of it), and their sequence numbers.

use smallvec::SmallVec;

use crate::journal::Event;
use crate::store::StoreError;
use crate::types::RunId;

/// The events of one commit, encoded.
#[derive(Debug, Default)]
pub(super) struct Encoded {
    /// Every event's JSON, one after the other.
    text: String,
    /// Each event's sequence number, and where its JSON ends in `text`.
    ends: SmallVec<[(u32, usize); 4]>,
}

impl Encoded {
    /// Encodes `events` (of run `run_id`). A write that waits for the writer thread is
    /// encoded on its caller's thread first: the writer, which every grouped write passes
    /// through, only writes.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an event that cannot be serialized.
    pub(super) fn of(run_id: RunId, events: &[Event]) -> Result<Self, StoreError> {
        let mut bytes = Vec::with_capacity(192 * events.len());
        let mut ends = SmallVec::with_capacity(events.len());
        for event in events {
            serde_json::to_writer(&mut bytes, event).map_err(|e| StoreError::Corrupt {
                run_id: run_id.to_string(),
                message: format!("event {} cannot be serialized: {e}", event.seq),
            })?;
            ends.push((event.seq, bytes.len()));
        }
        // serde_json writes UTF-8 only.
        let text = String::from_utf8(bytes).map_err(|e| StoreError::Corrupt {
            run_id: run_id.to_string(),
            message: format!("an event's JSON is not UTF-8: {e}"),
        })?;
        Ok(Encoded { text, ends })
    }

    /// How many events.
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub(super) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Each event's sequence number and JSON, from the `from`th, `count` of them at most.
    pub(super) fn events(&self, from: usize, count: usize) -> impl Iterator<Item = (u32, &str)> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|&(_, end)| end));
        starts
            .zip(self.ends.iter())
            .skip(from)
            .take(count)
            .map(|(start, &(seq, end))| (seq, &self.text[start..end]))
    }
}

/// A run id as it is stored (lowercase, hyphenated), without an allocation.
pub(super) struct RunIdText([u8; uuid::fmt::Hyphenated::LENGTH]);

impl RunIdText {
    pub(super) fn of(run_id: RunId) -> Self {
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        run_id.as_uuid().hyphenated().encode_lower(&mut text);
        RunIdText(text)
    }

    pub(super) fn as_str(&self) -> &str {
        // Hexadecimal digits and hyphens: ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}
