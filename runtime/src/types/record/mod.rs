//! Turning a run's values into JSON records that can be read back: never deeper than
//! serde_json reads ([`MAX_DEPTH`]), never larger than the engine allows, and serialized
//! without recursing past that depth (a value nested 10,000 levels deep is refused, not a
//! stack overflow).

mod depth;

use serde::Serialize;
use serde_json::Value;

pub(crate) use self::depth::to_json_value;
use self::depth::{Refusal, to_value_within_depth};

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

/// `value` as a JSON record of at most `max_bytes` bytes, or why it cannot be one. `what`
/// names it in the error.
pub(crate) fn to_record<T: Serialize + ?Sized>(
    value: &T,
    max_bytes: usize,
    what: impl FnOnce() -> String,
) -> Result<Value, RecordError> {
    let json = match to_value_within_depth(value) {
        Ok(json) => json,
        Err(Refusal::TooDeep) => {
            return Err(RecordError::TooDeep {
                what: what(),
                limit: MAX_DEPTH,
            });
        }
        Err(Refusal::Serde(message)) => {
            return Err(RecordError::Unserializable {
                what: what(),
                message,
            });
        }
    };
    check_size(&json, max_bytes, what)?;
    Ok(json)
}

/// Checks that `json` is at most `max_bytes` bytes as JSON text.
pub(crate) fn check_size(
    json: &Value,
    max_bytes: usize,
    what: impl FnOnce() -> String,
) -> Result<(), RecordError> {
    // Cheap when far below: every value takes at least as many bytes as its scalars' text.
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
    }
}
