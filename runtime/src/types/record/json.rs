//! A recorded value's JSON, kept as the text it was written as: a step's output is
//! serialized once, into the text the journal keeps and the store writes as it is.

use std::fmt;

use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde::ser::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// A value a run recorded (a step's output, its compensation data), as JSON text: valid,
/// compact JSON, nested [`MAX_DEPTH`](crate::MAX_DEPTH) levels at most when the run wrote
/// it. In an event's JSON it is written as the JSON it is, not as a string.
///
/// Two recorded values are equal when they are the same JSON value (an object's keys in any
/// order): a value read back from a store may list them in another order than it was
/// written in.
#[derive(Clone)]
pub struct RecordedJson(Box<RawValue>);

impl RecordedJson {
    /// `value` as JSON.
    ///
    /// # Errors
    /// `value`'s `Serialize` failed, or it is a map with keys that are not strings.
    pub fn new<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(RecordedJson)
    }

    /// JSON written by serde_json.
    pub(crate) fn from_raw(json: Box<RawValue>) -> Self {
        RecordedJson(json)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Whether it is `null`.
    pub fn is_null(&self) -> bool {
        self.get() == "null"
    }

    /// The value as a `serde_json::Value` (parsed from the text).
    pub fn to_value(&self) -> Value {
        // Valid JSON no deeper than the reader reads: it parses.
        serde_json::from_str(self.get()).unwrap_or(Value::Null)
    }

    /// The value read as a `T`.
    ///
    /// # Errors
    /// The JSON does not fit `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.get())
    }
}

impl PartialEq for RecordedJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get() || self.to_value() == other.to_value()
    }
}

impl PartialEq<Value> for RecordedJson {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

impl fmt::Debug for RecordedJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl fmt::Display for RecordedJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl From<&Value> for RecordedJson {
    fn from(value: &Value) -> Self {
        // A `Value` always serializes (its keys are strings).
        RecordedJson::new(value).unwrap_or_else(|_| RecordedJson::null())
    }
}

impl From<Value> for RecordedJson {
    fn from(value: Value) -> Self {
        RecordedJson::from(&value)
    }
}

impl RecordedJson {
    fn null() -> Self {
        // `RawValue::NULL` is a `&'static RawValue`.
        RecordedJson(RawValue::NULL.to_owned())
    }
}

impl Serialize for RecordedJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RecordedJson {
    /// Read as a `Value` (inside a journal event the JSON reaches it buffered, where a
    /// `RawValue` cannot be read), then written as text: whatever it is, it is valid JSON.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        RecordedJson::new(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_written_as_the_json_it_is_and_read_back_equal() {
        let json = RecordedJson::new(&serde_json::json!({"b": [1, "x\n"], "a": null})).unwrap();
        assert_eq!(json.get(), r#"{"a":null,"b":[1,"x\n"]}"#);
        let wrapped = serde_json::to_string(&serde_json::json!({ "output": &json })).unwrap();
        assert_eq!(wrapped, r#"{"output":{"a":null,"b":[1,"x\n"]}}"#);
        // Read back inside a tagged enum (buffered), as a journal event is.
        #[derive(serde::Deserialize)]
        #[serde(tag = "t")]
        enum Tagged {
            A { output: RecordedJson },
        }
        let text = r#"{"t":"A","output":{"b":[1,"x\n"],"a":null}}"#;
        let Tagged::A { output } = serde_json::from_str(text).unwrap();
        assert_eq!(output, json);
        assert_eq!(output.to_value(), json.to_value());
        let parsed: std::collections::BTreeMap<String, Value> = output.parse().unwrap();
        assert_eq!(parsed.len(), 2);
        assert_ne!(output, RecordedJson::new(&1).unwrap());
        assert!(RecordedJson::new(&()).unwrap().is_null());
    }

    #[test]
    fn a_bad_record_is_an_error_not_a_panic() {
        #[derive(Debug, serde::Deserialize)]
        struct Holder {
            #[allow(dead_code)]
            output: RecordedJson,
        }
        for bad in [
            r#"{"output":}"#,
            r#"{"output":[1,}"#,
            r#"{"output":"\ud800x"#,
        ] {
            assert!(serde_json::from_str::<Holder>(bad).is_err(), "{bad}");
        }
    }
}
