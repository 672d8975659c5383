//! A commit's journal events as they are stored: their JSON, written once into one buffer
//! (the statement binds each event's slice of it), and their sequence numbers.

use smallvec::SmallVec;

use crate::journal::{Event, EventKind};
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
            write_event(&mut bytes, event).map_err(|e| StoreError::Corrupt {
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

/// Writes `event`'s JSON, as its `Serialize` writes it: the kinds every run or step records
/// (`RunStarted`, `StepStarted`, `StepCompleted`, `HookFired`, `RunEnded`) directly, their keys as the literals they are (serde's
/// derived code escapes every key and tag anew), the others through `Serialize`.
/// `the_events_every_run_records_are_written_as_serde_writes_them` holds the two to the same
/// bytes.
pub(super) fn write_event(bytes: &mut Vec<u8>, event: &Event) -> serde_json::Result<()> {
    let head = |bytes: &mut Vec<u8>, tag: &str| -> serde_json::Result<()> {
        bytes.extend_from_slice(b"{\"seq\":");
        serde_json::to_writer(&mut *bytes, &event.seq)?;
        bytes.extend_from_slice(b",\"at_micros\":");
        serde_json::to_writer(&mut *bytes, &event.at_micros)?;
        bytes.extend_from_slice(b",\"event\":\"");
        bytes.extend_from_slice(tag.as_bytes());
        bytes.extend_from_slice(b"\",");
        Ok(())
    };
    match &event.kind {
        EventKind::StepStarted {
            step,
            position,
            key,
        } => {
            head(bytes, "step_started")?;
            bytes.extend_from_slice(b"\"step\":");
            write_str(bytes, step.as_str())?;
            bytes.extend_from_slice(b",\"position\":");
            serde_json::to_writer(&mut *bytes, position)?;
            if let Some(key) = key {
                bytes.extend_from_slice(b",\"key\":");
                write_str(bytes, key)?;
            }
        }
        EventKind::StepCompleted {
            step,
            position,
            compensable,
            output,
            compensation,
        } => {
            head(bytes, "step_completed")?;
            bytes.extend_from_slice(b"\"step\":");
            write_str(bytes, step.as_str())?;
            bytes.extend_from_slice(b",\"position\":");
            serde_json::to_writer(&mut *bytes, position)?;
            bytes.extend_from_slice(if *compensable {
                b",\"compensable\":true"
            } else {
                b",\"compensable\":false"
            });
            if let Some(output) = output {
                bytes.extend_from_slice(b",\"output\":");
                bytes.extend_from_slice(output.get().as_bytes());
            }
            if let Some(compensation) = compensation {
                bytes.extend_from_slice(b",\"compensation\":");
                bytes.extend_from_slice(compensation.get().as_bytes());
            }
        }
        EventKind::RunStarted { workflow, run_id } => {
            head(bytes, "run_started")?;
            bytes.extend_from_slice(b"\"workflow\":");
            write_str(bytes, workflow.as_str())?;
            bytes.extend_from_slice(b",\"run_id\":\"");
            bytes.extend_from_slice(RunIdText::of(*run_id).as_str().as_bytes());
            bytes.push(b'"');
        }
        EventKind::RunEnded { status } => {
            head(bytes, "run_ended")?;
            bytes.extend_from_slice(b"\"status\":");
            serde_json::to_writer(&mut *bytes, status)?;
        }
        EventKind::HookFired {
            hook,
            handlers,
            firing,
            detail,
        } => {
            head(bytes, "hook_fired")?;
            bytes.extend_from_slice(b"\"hook\":");
            write_str(bytes, hook.as_str())?;
            bytes.extend_from_slice(b",\"handlers\":");
            serde_json::to_writer(&mut *bytes, handlers)?;
            bytes.extend_from_slice(b",\"firing\":");
            serde_json::to_writer(&mut *bytes, firing)?;
            if let Some(detail) = detail {
                if !detail.names.is_empty() {
                    bytes.extend_from_slice(b",\"names\":[");
                    for (i, name) in detail.names.iter().enumerate() {
                        if i > 0 {
                            bytes.push(b',');
                        }
                        write_str(bytes, name.as_str())?;
                    }
                    bytes.push(b']');
                }
                if let Some(key) = &detail.key {
                    bytes.extend_from_slice(b",\"key\":");
                    write_str(bytes, key)?;
                }
            }
        }
        _ => return serde_json::to_writer(bytes, event),
    }
    bytes.push(b'}');
    Ok(())
}

/// `s` as a JSON string: as it is between quotes when nothing in it is escaped (a step's
/// name, a key), else as serde_json escapes it.
fn write_str(bytes: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    let escaped = s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if escaped {
        return serde_json::to_writer(bytes, s);
    }
    bytes.push(b'"');
    bytes.extend_from_slice(s.as_bytes());
    bytes.push(b'"');
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RecordedJson;

    #[test]
    fn the_events_every_run_records_are_written_as_serde_writes_them() {
        let names = [
            "charge",
            "",
            "a\"b",
            "back\\slash",
            "tab\there",
            "é💥",
            "\u{7f}x",
            "\u{1}",
        ];
        let outputs = [
            None,
            Some(serde_json::json!(null)),
            Some(serde_json::json!({"n": 1, "items": [1, 2, "x\n"]})),
            Some(serde_json::json!("\"quoted\"")),
        ];
        let mut events = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let name = || crate::journal::Name::from(name.to_string());
            let record =
                |v: &Option<serde_json::Value>| v.as_ref().map(|v| Box::new(RecordedJson::from(v)));
            for (j, output) in outputs.iter().enumerate() {
                let seq = (i * 10 + j) as u32 * 7919;
                let at_micros = u64::MAX >> (i + j);
                events.push(Event {
                    seq,
                    at_micros,
                    kind: EventKind::StepStarted {
                        step: name(),
                        position: seq / 3,
                        key: (j % 2 == 1)
                            .then(|| format!("p{j}.{i}/{name}", name = names[i]).into()),
                    },
                });
                events.push(Event {
                    seq,
                    at_micros,
                    kind: EventKind::StepCompleted {
                        step: name(),
                        position: u32::MAX - seq,
                        compensable: j % 2 == 0,
                        output: record(output),
                        compensation: record(&outputs[(j + i) % outputs.len()]),
                    },
                });
            }
        }
        for (i, name) in names.iter().enumerate() {
            let name = || crate::journal::Name::from(name.to_string());
            events.push(Event {
                seq: i as u32,
                at_micros: 2,
                kind: EventKind::RunStarted {
                    workflow: name(),
                    run_id: crate::types::RunId::new(),
                },
            });
            let detail = [
                None,
                crate::journal::FiringDetail::of(vec![name(), "b".into()], None),
                crate::journal::FiringDetail::of(vec![], Some(names[i].into())),
                crate::journal::FiringDetail::of(vec![name()], Some("p0.1/0".into())),
            ];
            for detail in detail {
                events.push(Event {
                    seq: 3,
                    at_micros: 4,
                    kind: EventKind::HookFired {
                        hook: name(),
                        handlers: i as u32,
                        firing: u32::MAX,
                        detail,
                    },
                });
            }
        }
        for status in [
            crate::types::RunStatus::Completed,
            crate::types::RunStatus::CompensationFailed,
            crate::types::RunStatus::Parked,
        ] {
            events.push(Event {
                seq: 9,
                at_micros: 0,
                kind: EventKind::RunEnded { status },
            });
        }
        // Another kind goes through `Serialize`.
        events.push(Event {
            seq: 1,
            at_micros: 2,
            kind: EventKind::CompensationCompleted {
                step: "s".into(),
                position: 3,
            },
        });
        for event in &events {
            let mut bytes = Vec::new();
            write_event(&mut bytes, event).unwrap();
            let text = String::from_utf8(bytes).unwrap();
            assert_eq!(text, serde_json::to_string(event).unwrap());
            // And it reads back as the event.
            assert_eq!(&serde_json::from_str::<Event>(&text).unwrap(), event);
        }
    }
}
