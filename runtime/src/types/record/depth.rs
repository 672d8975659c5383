//! Serializing to JSON without recursing past [`MAX_DEPTH`]: a serializer that counts the
//! arrays and objects it is inside, and refuses to open one more before it recurses.

use std::cell::Cell;

use serde::ser::{self, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::MAX_DEPTH;

/// Why a value could not be turned into JSON.
pub(crate) enum Refusal {
    TooDeep,
    Serde(String),
}

/// `serde_json::to_value`, refusing (before recursing further) any value nested deeper
/// than [`MAX_DEPTH`] arrays or objects, or [`MAX_CALLS`] levels of `Serialize` calls.
pub(crate) fn to_value_within_depth<T: Serialize + ?Sized>(value: &T) -> Result<Value, Refusal> {
    TRIPPED.set(false);
    let result = value.serialize(Limited {
        inner: serde_json::value::Serializer,
        depth: 0,
        calls: 0,
    });
    match result {
        Ok(json) => Ok(json),
        Err(_) if TRIPPED.get() => Err(Refusal::TooDeep),
        Err(err) => Err(Refusal::Serde(err.to_string())),
    }
}

/// `value` as JSON text, written once, refusing (before recursing further) as
/// [`to_value_within_depth`] does.
pub(crate) fn to_raw_within_depth<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Box<RawValue>, Refusal> {
    TRIPPED.set(false);
    match serde_json::value::to_raw_value(&Nested {
        value,
        depth: 0,
        calls: 0,
    }) {
        Ok(json) => Ok(json),
        Err(_) if TRIPPED.get() => Err(Refusal::TooDeep),
        Err(err) => Err(Refusal::Serde(err.to_string())),
    }
}

/// [`to_raw_within_depth`] with serde_json's error, as [`to_json_value`] has it.
pub(crate) fn to_json_text<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Box<RawValue>, serde_json::Error> {
    to_raw_within_depth(value).map_err(serde_error)
}

/// [`to_value_within_depth`] with serde_json's error: for a `Serialize` impl that turns a
/// value into JSON inside another serialization (a value too deep there is still reported
/// as too deep by the outer one).
pub(crate) fn to_json_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, serde_json::Error> {
    to_value_within_depth(value).map_err(serde_error)
}

/// A refusal as serde_json's error, still reported as too deep by an outer serialization.
fn serde_error(refusal: Refusal) -> serde_json::Error {
    match refusal {
        Refusal::TooDeep => {
            TRIPPED.set(true);
            ser::Error::custom("nested too deep")
        }
        Refusal::Serde(message) => ser::Error::custom(message),
    }
}

thread_local! {
    /// Set when a serialization on this thread went past the depth: the error it returns
    /// travels through the value's own `Serialize` impls, which may rewrap it.
    static TRIPPED: Cell<bool> = const { Cell::new(false) };
}

/// How many nested `Serialize` calls a value may make, containers or not (`Some`, newtypes):
/// a bound on the stack serialization takes.
const MAX_CALLS: usize = 4 * MAX_DEPTH;

/// A serializer that counts the arrays and objects it is inside, and the nested calls.
struct Limited<S> {
    inner: S,
    depth: usize,
    calls: usize,
}

/// A value to serialize one level down.
struct Nested<'a, T: ?Sized> {
    value: &'a T,
    depth: usize,
    calls: usize,
}

impl<T: Serialize + ?Sized> Serialize for Nested<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.depth > MAX_DEPTH || self.calls > MAX_CALLS {
            TRIPPED.set(true);
            return Err(ser::Error::custom("nested too deep"));
        }
        self.value.serialize(Limited {
            inner: serializer,
            depth: self.depth,
            calls: self.calls,
        })
    }
}

impl<S> Limited<S> {
    /// `value`, `opened` containers further down.
    fn nested<'v, T: ?Sized>(&self, value: &'v T, opened: usize) -> Nested<'v, T> {
        Nested {
            value,
            depth: self.depth + opened,
            calls: self.calls + 1,
        }
    }
}

/// A container being serialized, whose elements are one level down.
struct Compound<C> {
    inner: C,
    depth: usize,
    calls: usize,
}

impl<C> Compound<C> {
    fn element<'v, T: ?Sized>(&self, value: &'v T) -> Nested<'v, T> {
        Nested {
            value,
            depth: self.depth,
            calls: self.calls,
        }
    }
}

fn too_deep<E: ser::Error>() -> E {
    E::custom("nested too deep")
}

/// Opens a container `$opened` levels down with `$call`, unless that is too deep.
macro_rules! open {
    ($self:ident, $opened:expr, $call:expr) => {{
        if $self.depth + $opened > MAX_DEPTH {
            TRIPPED.set(true);
            return Err(too_deep());
        }
        let (depth, calls) = ($self.depth + $opened, $self.calls + 1);
        Ok(Compound {
            inner: $call?,
            depth,
            calls,
        })
    }};
}

impl<S: Serializer> Serializer for Limited<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<S::SerializeSeq>;
    type SerializeTuple = Compound<S::SerializeTuple>;
    type SerializeTupleStruct = Compound<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<S::SerializeTupleVariant>;
    type SerializeMap = Compound<S::SerializeMap>;
    type SerializeStruct = Compound<S::SerializeStruct>;
    type SerializeStructVariant = Compound<S::SerializeStructVariant>;

    fn serialize_bool(self, v: bool) -> Result<S::Ok, S::Error> {
        self.inner.serialize_bool(v)
    }
    fn serialize_i8(self, v: i8) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i8(v)
    }
    fn serialize_i16(self, v: i16) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i16(v)
    }
    fn serialize_i32(self, v: i32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i32(v)
    }
    fn serialize_i64(self, v: i64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i64(v)
    }
    fn serialize_i128(self, v: i128) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i128(v)
    }
    fn serialize_u8(self, v: u8) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u8(v)
    }
    fn serialize_u16(self, v: u16) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u16(v)
    }
    fn serialize_u32(self, v: u32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u32(v)
    }
    fn serialize_u64(self, v: u64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u64(v)
    }
    fn serialize_u128(self, v: u128) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u128(v)
    }
    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_f32(v)
    }
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_f64(v)
    }
    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        self.inner.serialize_char(v)
    }
    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        self.inner.serialize_str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        self.inner.serialize_bytes(v)
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_none()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let nested = self.nested(value, 0);
        self.inner.serialize_some(&nested)
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit()
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_struct(name)
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let nested = self.nested(value, 0);
        self.inner.serialize_newtype_struct(name, &nested)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        // `{"variant": value}`: the value is inside an object.
        if self.depth + 1 > MAX_DEPTH {
            TRIPPED.set(true);
            return Err(too_deep());
        }
        let nested = self.nested(value, 1);
        self.inner
            .serialize_newtype_variant(name, index, variant, &nested)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        open!(self, 1, self.inner.serialize_seq(len))
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        open!(self, 1, self.inner.serialize_tuple(len))
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        open!(self, 1, self.inner.serialize_tuple_struct(name, len))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        // `{"variant": [...]}`: two levels.
        open!(
            self,
            2,
            self.inner
                .serialize_tuple_variant(name, index, variant, len)
        )
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        open!(self, 1, self.inner.serialize_map(len))
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        open!(self, 1, self.inner.serialize_struct(name, len))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        open!(
            self,
            2,
            self.inner
                .serialize_struct_variant(name, index, variant, len)
        )
    }
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

impl<C: ser::SerializeSeq> ser::SerializeSeq for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let nested = self.element(value);
        self.inner.serialize_element(&nested)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: ser::SerializeTuple> ser::SerializeTuple for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let nested = self.element(value);
        self.inner.serialize_element(&nested)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: ser::SerializeTupleStruct> ser::SerializeTupleStruct for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let nested = self.element(value);
        self.inner.serialize_field(&nested)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: ser::SerializeTupleVariant> ser::SerializeTupleVariant for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let nested = self.element(value);
        self.inner.serialize_field(&nested)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: ser::SerializeMap> ser::SerializeMap for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        let nested = self.element(key);
        self.inner.serialize_key(&nested)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let nested = self.element(value);
        self.inner.serialize_value(&nested)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: ser::SerializeStruct> ser::SerializeStruct for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        let nested = self.element(value);
        self.inner.serialize_field(key, &nested)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: ser::SerializeStructVariant> ser::SerializeStructVariant for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        let nested = self.element(value);
        self.inner.serialize_field(key, &nested)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}
