//! Turning a run's values into JSON records that can be read back: never deeper than
//! serde_json reads ([`MAX_DEPTH`]), never larger than the engine allows, and serialized
//! without recursing past that depth (a value nested 10,000 levels deep is refused, not a
//! stack overflow).

mod depth;
mod json;

use serde::Serialize;
use serde_json::Value;

use self::depth::{Refusal, to_raw_within_depth, to_value_within_depth};
pub(crate) use self::depth::{to_json_text, to_json_value};
pub use self::json::RecordedJson;

/// How deep a record may be nested, in arrays and objects. serde_json reads no more than 127
/// nested levels, and the journal keeps a value inside its event (and a job's payload inside
/// its job): 120 leaves room for those.
pub const MAX_DEPTH: usize = 120;

/// The default bound on one value's size as JSON: 16 MiB
/// ([`EngineBuilder::max_record_bytes`](crate::EngineBuilder::max_record_bytes)).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 << 20;

/// A value of a run that cannot be recorded: the run refuses it where it is made (at the
/// start for the input, at the step for an output) rather than write what could not be read
/// back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Nested deeper than [`MAX_DEPTH`] arrays or objects.
    #[error(
        "{what} is nested more than {limit} levels deep: a record may be nested {limit} levels at most (the JSON reader reads 127, and the journal wraps values)"
    )]
    TooDeep {
        /// The value: "the input", "the output of step `charge`"...
        what: String,
        /// The limit, [`MAX_DEPTH`].
        limit: usize,
    },
    /// Larger, as JSON, than the engine's bound.
    #[error(
        "{what} is {size} bytes as JSON: a record may be {limit} bytes at most (EngineBuilder::max_record_bytes)"
    )]
    TooLarge {
        /// The value.
        what: String,
        /// Its size as JSON.
        size: usize,
        /// The bound.
        limit: usize,
    },
    /// Its `Serialize` implementation failed.
    #[error("{what} cannot be serialized: {message}")]
    Unserializable {
        /// The value.
        what: String,
        /// serde's error.
        message: String,
    },
    /// The store refused to write it.
    #[error("the store refused {what}: {message}")]
    Refused {
        /// What was written.
        what: String,
        /// The store's error.
        message: String,
    },
}

impl Refusal {
    /// The error for the value `what` names.
    fn into_error(self, what: String) -> RecordError {
        match self {
            Refusal::TooDeep => RecordError::TooDeep {
                what,
                limit: MAX_DEPTH,
            },
            Refusal::Serde(message) => RecordError::Unserializable { what, message },
        }
    }
}

/// `value` as a JSON record of at most `max_bytes` bytes, or why it cannot be one. `what`
/// names it in the error.
pub(crate) fn to_record<T: Serialize + ?Sized>(
    value: &T,
    max_bytes: usize,
    what: impl FnOnce() -> String,
) -> Result<Value, RecordError> {
    let json = match to_value_within_depth(value) {
        Ok(json) => json,
        Err(refusal) => return Err(refusal.into_error(what())),
    };
    check_size(&json, max_bytes, what)?;
    Ok(json)
}

/// `value` as the JSON text of a record of at most `max_bytes` bytes, or why it cannot be
/// one: written once, in one pass that refuses a value nested too deep before it recurses
/// further; its size is then the text's length. `what` names it in the error.
pub(crate) fn to_recorded_json<T: Serialize + ?Sized>(
    value: &T,
    max_bytes: usize,
    what: impl FnOnce() -> String,
) -> Result<RecordedJson, RecordError> {
    let json = match to_raw_within_depth(value) {
        Ok(json) => json,
        Err(refusal) => return Err(refusal.into_error(what())),
    };
    let size = json.get().len();
    if size > max_bytes {
        return Err(RecordError::TooLarge {
            what: what(),
            size,
            limit: max_bytes,
        });
    }
    Ok(RecordedJson::from_raw(json))
}

/// A value a step records, written as its record at once (a step's output or compensation
/// data, wrapped by the code `#[step]` generates: its JSON written once, not once into the
/// wrapper and once more around it).
#[doc(hidden)]
pub trait ToRecord {
    /// The value as a record of at most `max_bytes` bytes ([`to_recorded_json`]); `what`
    /// names it in the error.
    ///
    /// # Errors
    /// Why it cannot be recorded.
    fn to_recorded(
        &self,
        max_bytes: usize,
        what: &dyn Fn() -> String,
    ) -> Result<RecordedJson, RecordError>;
}

/// Checks that `json` is at most `max_bytes` bytes as JSON text.
pub(crate) fn check_size(
    json: &Value,
    max_bytes: usize,
    what: impl FnOnce() -> String,
) -> Result<(), RecordError> {
    // Most values are far below the bound: an upper bound of their size, taken without
    // writing them, settles it. Only a value whose bound passes the limit is written out
    // and counted (stopping once past it).
    let mut bound = 0;
    if size_bound_within(json, &mut bound, max_bytes, 0) {
        return Ok(());
    }
    let mut counter = Counter {
        bytes: 0,
        limit: max_bytes,
    };
    if serde_json::to_writer(&mut counter, json).is_err() || counter.bytes > max_bytes {
        return Err(RecordError::TooLarge {
            what: what(),
            size: counter.bytes,
            limit: max_bytes,
        });
    }
    Ok(())
}

/// Adds to `total` an upper bound of `json`'s size as JSON text, without writing it: each
/// string counted as if every byte were escaped (`\u00XX`: six bytes), each number at its
/// length as written. Returns whether `total` is still at most `limit` (it stops adding once
/// past it, and at a depth past any the callers let through).
fn size_bound_within(json: &Value, total: &mut usize, limit: usize, depth: usize) -> bool {
    if depth > MAX_DEPTH + 1 {
        return false;
    }
    match json {
        Value::Null | Value::Bool(_) => *total += 5,
        Value::Number(n) => *total += number_bound(n),
        Value::String(s) => *total = total.saturating_add(string_bound(s)),
        Value::Array(items) => {
            // Brackets and commas.
            *total += 2 + items.len();
            for item in items {
                if !size_bound_within(item, total, limit, depth + 1) {
                    return false;
                }
            }
        }
        Value::Object(map) => {
            // Braces, commas and colons.
            *total += 2 + 2 * map.len();
            for (key, value) in map {
                *total = total.saturating_add(string_bound(key));
                if !size_bound_within(value, total, limit, depth + 1) {
                    return false;
                }
            }
        }
    }
    *total <= limit
}

/// The most bytes `n` takes as JSON: an integer's digits and one for a sign (`-0`, kept as
/// written where numbers keep their text), another number's text as written.
fn number_bound(n: &serde_json::Number) -> usize {
    let digits = |u: u64| u.checked_ilog10().map_or(1, |log| log as usize + 1);
    if let Some(u) = n.as_u64() {
        digits(u) + 1
    } else if let Some(i) = n.as_i64() {
        digits(i.unsigned_abs()) + 1
    } else {
        let mut len = TextLen(0);
        let _ = std::fmt::Write::write_fmt(&mut len, format_args!("{n}"));
        len.0
    }
}

/// The most bytes `s` takes as a JSON string: its quotes, and six bytes a byte.
fn string_bound(s: &str) -> usize {
    s.len().saturating_mul(6).saturating_add(2)
}

/// Counts the bytes of formatted text.
struct TextLen(usize);

impl std::fmt::Write for TextLen {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Checks a value that is JSON already (additional data): its depth, without recursion, and
/// its size.
pub(crate) fn check_value(
    json: &Value,
    max_bytes: usize,
    what: impl FnOnce() -> String,
) -> Result<(), RecordError> {
    let mut stack: Vec<(&Value, usize)> = vec![(json, 0)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth + 1 > MAX_DEPTH {
            return Err(RecordError::TooDeep {
                what: what(),
                limit: MAX_DEPTH,
            });
        }
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    check_size(json, max_bytes, what)
}

/// Counts the bytes written, and stops once past the limit.
struct Counter {
    bytes: usize,
    limit: usize,
}

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len();
        if self.bytes > self.limit {
            return Err(std::io::Error::other("over the limit"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::ser::{self, Serializer};

    fn nested_arrays(levels: usize) -> Value {
        let mut value = Value::Null;
        for _ in 0..levels {
            value = Value::Array(vec![value]);
        }
        value
    }

    fn what() -> String {
        "the input".to_owned()
    }

    /// Whether serde_json reads the value back as the journal holds the deepest of them: a
    /// job's payload, inside its job, inside its event.
    fn reads_back(json: &Value) -> bool {
        let event = serde_json::json!({ "event": "job_enqueued", "job": { "payload": json } });
        let text = serde_json::to_string(&event).unwrap();
        serde_json::from_str::<Value>(&text).is_ok()
    }

    #[test]
    fn the_deepest_accepted_record_reads_back_and_one_level_more_is_refused() {
        let deepest = nested_arrays(MAX_DEPTH);
        let json = to_record(&deepest, usize::MAX, what).unwrap();
        assert_eq!(json, deepest);
        assert!(check_value(&deepest, usize::MAX, what).is_ok());
        // Read back inside its event, as a store reads it, it is whole.
        assert!(reads_back(&json));

        // serde_json's limit is a little further: 127 levels in all.
        assert!(reads_back(&nested_arrays(125)));
        assert!(!reads_back(&nested_arrays(126)), "the reader's limit moved");
        let deeper = nested_arrays(MAX_DEPTH + 1);
        let err = to_record(&deeper, usize::MAX, what).unwrap_err();
        assert_eq!(
            err,
            RecordError::TooDeep {
                what: "the input".into(),
                limit: MAX_DEPTH
            }
        );
        assert!(err.to_string().contains("120 levels"), "{err}");
        assert_eq!(check_value(&deeper, usize::MAX, what), Err(err));
    }

    #[test]
    fn a_value_nested_ten_thousand_levels_is_refused_without_overflowing_the_stack() {
        // Run on a small stack: serializing it level by level would overflow it.
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let deep = nested_arrays(10_000);
                let refused = matches!(
                    to_record(&deep, usize::MAX, what),
                    Err(RecordError::TooDeep { .. })
                );
                let checked = matches!(
                    check_value(&deep, usize::MAX, what),
                    Err(RecordError::TooDeep { .. })
                );
                // Dropped level by level, not recursively.
                let mut stack = vec![deep];
                while let Some(value) = stack.pop() {
                    if let Value::Array(items) = value {
                        stack.extend(items);
                    }
                }
                refused && checked
            })
            .unwrap();
        assert!(handle.join().unwrap());
    }

    #[test]
    fn structs_enums_and_maps_count_their_levels_as_json_does() {
        #[derive(serde::Serialize)]
        enum Tree {
            Leaf,
            Node(Box<Tree>),
            Pair(Box<Tree>, u8),
            Named { child: Box<Tree> },
        }
        // Each `Node` is `{"Node": ...}` (one level), each `Pair` `{"Pair": [..]}` (two),
        // each `Named` `{"Named": {"child": ..}}` (two).
        let build = |levels: usize, node: fn(Box<Tree>) -> Tree| {
            let mut tree = Tree::Leaf;
            for _ in 0..levels {
                tree = node(Box::new(tree));
            }
            tree
        };
        for (node, per_level) in [
            (Tree::Node as fn(Box<Tree>) -> Tree, 1),
            (|t| Tree::Pair(t, 0), 2),
            (|child| Tree::Named { child }, 2),
        ] {
            let fits = build(MAX_DEPTH / per_level, node);
            let json = to_record(&fits, usize::MAX, what).unwrap();
            assert!(reads_back(&json));
            let over = build(MAX_DEPTH / per_level + 1, node);
            assert!(matches!(
                to_record(&over, usize::MAX, what),
                Err(RecordError::TooDeep { .. })
            ));
        }
    }

    #[test]
    fn a_record_larger_than_the_bound_is_refused_with_its_size() {
        let big = "x".repeat(1000);
        assert!(
            to_record(&big, 1002, what).is_ok(),
            "1000 bytes and two quotes"
        );
        let err = to_record(&big, 1001, what).unwrap_err();
        assert!(
            matches!(err, RecordError::TooLarge { limit: 1001, size, .. } if size > 1001),
            "{err:?}"
        );
        assert!(err.to_string().contains("max_record_bytes"), "{err}");
    }

    #[test]
    fn a_value_whose_escapes_pass_the_bound_is_refused() {
        // 100 newlines are 100 bytes in memory and 202 as JSON ("\n" each, two quotes).
        let newlines = "\n".repeat(100);
        assert!(to_record(&newlines, 202, what).is_ok());
        let err = to_record(&newlines, 201, what).unwrap_err();
        assert!(
            matches!(err, RecordError::TooLarge { limit: 201, .. }),
            "{err:?}"
        );
        let controls = "\u{1}".repeat(100); // "\u0001" each: 602 bytes
        assert!(to_record(&controls, 602, what).is_ok());
        assert!(to_record(&controls, 601, what).is_err());
    }

    /// Values of every kind, nested, with strings that need escapes and numbers of every
    /// width, from a fixed seed.
    fn values(seed: u64, count: usize) -> Vec<Value> {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        const PIECES: &[&str] = &[
            "a", "\"", "\\", "\n", "\u{1}", "\u{7f}", "é", "💥", "/", " ",
        ];
        fn make(next: &mut dyn FnMut() -> u64, depth: usize) -> Value {
            match next() % if depth > 4 { 6 } else { 8 } {
                0 => Value::Null,
                1 => Value::Bool(next().is_multiple_of(2)),
                2 => Value::from(next() << (next() % 31)),
                3 => Value::from(-(next() as i64) * (next() % 1000) as i64),
                4 => Value::from((next() as f64) / ((next() % 977) as f64 + 0.37) * 1e-7),
                5 => Value::String(
                    (0..next() % 12)
                        .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                        .collect(),
                ),
                6 => Value::Array((0..next() % 5).map(|_| make(next, depth + 1)).collect()),
                _ => Value::Object(
                    (0..next() % 5)
                        .map(|i| (format!("k{i}\n\"{}", next() % 10), make(next, depth + 1)))
                        .collect(),
                ),
            }
        }
        (0..count).map(|_| make(&mut next, 0)).collect()
    }

    #[test]
    fn the_size_bound_is_never_below_the_size_as_json() {
        for value in values(20, 5000) {
            let size = serde_json::to_string(&value).unwrap().len();
            let mut bound = 0;
            assert!(size_bound_within(&value, &mut bound, usize::MAX, 0));
            assert!(bound >= size, "bound {bound} < {size} for {value}");
            // Exactly at the size the value is accepted, one byte below it is refused.
            assert!(check_size(&value, size, what).is_ok(), "{value}");
            assert!(check_size(&value, size - 1, what).is_err(), "{value}");
        }
    }

    #[test]
    fn a_recorded_json_text_has_the_limits_of_a_record() {
        // The deepest accepted, written as it reads back; one level more refused.
        let deepest = nested_arrays(MAX_DEPTH);
        let json = to_recorded_json(&deepest, usize::MAX, what).unwrap();
        assert_eq!(json.get(), serde_json::to_string(&deepest).unwrap());
        assert!(reads_back(&json.to_value()));
        assert_eq!(
            to_recorded_json(&nested_arrays(MAX_DEPTH + 1), usize::MAX, what),
            Err(RecordError::TooDeep {
                what: "the input".into(),
                limit: MAX_DEPTH
            })
        );
        // 10,000 levels, on a small stack: refused before it recurses further.
        let deep = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let deep = nested_arrays(10_000);
                let refused = matches!(
                    to_recorded_json(&deep, usize::MAX, what),
                    Err(RecordError::TooDeep { .. })
                );
                let mut stack = vec![deep];
                while let Some(value) = stack.pop() {
                    if let Value::Array(items) = value {
                        stack.extend(items);
                    }
                }
                refused
            })
            .unwrap();
        assert!(deep.join().unwrap());
        // Its size is the text's: accepted at it, refused one byte below with its size.
        let newlines = "\n".repeat(100);
        assert_eq!(
            to_recorded_json(&newlines, 202, what).unwrap().get().len(),
            202
        );
        assert_eq!(
            to_recorded_json(&newlines, 201, what),
            Err(RecordError::TooLarge {
                what: "the input".into(),
                size: 202,
                limit: 201
            })
        );
        for value in values(21, 1000) {
            let text = serde_json::to_string(&value).unwrap();
            let json = to_recorded_json(&value, text.len(), what).unwrap();
            assert_eq!(json.get(), text);
            assert!(to_recorded_json(&value, text.len() - 1, what).is_err());
        }
    }

    #[test]
    fn a_failing_serialize_is_unserializable_not_too_deep() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(ser::Error::custom("no"))
            }
        }
        assert_eq!(
            to_record(&vec![Fails], usize::MAX, what),
            Err(RecordError::Unserializable {
                what: "the input".into(),
                message: "no".into()
            })
        );
        assert_eq!(
            to_recorded_json(&vec![Fails], usize::MAX, what),
            Err(RecordError::Unserializable {
                what: "the input".into(),
                message: "no".into()
            })
        );
    }
}
