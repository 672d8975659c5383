//! [`Name`]: a name in the journal, two words wide.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The bit of `len` that says the name owns its bytes (a `Box<str>` to free).
const OWNED: usize = 1 << (usize::BITS - 1);

/// A name in the journal (a workflow's, a step's, a hook's, a handler's): a `&'static str`
/// when a run records it, owned when a journal is read back. What a `Cow<'static, str>` is,
/// in two words instead of three: a `&'static str` or a `Box<str>`, told apart by the top
/// bit of the length (no string is that long). An event holds up to two names, and a run's
/// journal holds its events inline: the third word was 16 bytes of every event.
///
/// It derefs to `str`, compares with strings, and is made with `.into()` from a
/// `&'static str`, a `String`, a `Box<str>` or a `Cow<'static, str>`.
pub struct Name {
    ptr: NonNull<u8>,
    /// The length, with [`OWNED`] set when `ptr` came from `Box::<str>::into_raw`.
    len: usize,
    /// Owns a `Box<str>` when `OWNED` is set.
    _owns: PhantomData<Box<str>>,
}

// SAFETY: a `Name` is a `&'static str` or a `Box<str>`, both `Send` and `Sync`.
unsafe impl Send for Name {}
// SAFETY: as above; a `Name` is never mutated through a shared reference.
unsafe impl Sync for Name {}

impl Name {
    /// A name that borrows `s`.
    pub const fn borrowed(s: &'static str) -> Self {
        Name {
            // SAFETY: a reference is never null.
            ptr: unsafe { NonNull::new_unchecked(s.as_ptr().cast_mut()) },
            len: s.len(),
            _owns: PhantomData,
        }
    }

    /// A name that owns `s`.
    pub fn owned(s: Box<str>) -> Self {
        let len = s.len();
        let raw = Box::into_raw(s);
        Name {
            // SAFETY: `Box::into_raw` never returns null.
            ptr: unsafe { NonNull::new_unchecked(raw.cast::<u8>()) },
            len: len | OWNED,
            _owns: PhantomData,
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // SAFETY: `ptr` and the length were taken from a `&'static str` or from a `Box<str>`
        // that this name owns and frees only when dropped: valid UTF-8 for as long as `self`.
        unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                self.ptr.as_ptr(),
                self.len & !OWNED,
            ))
        }
    }

    /// The `&'static str` it borrows, if it borrows one (a name recorded by a run, not read
    /// back from a store).
    pub fn as_static(&self) -> Option<&'static str> {
        if self.is_owned() {
            return None;
        }
        // SAFETY: a name that does not own its bytes was made from a `&'static str`.
        Some(unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.ptr.as_ptr(), self.len))
        })
    }

    /// Whether it owns its bytes.
    pub fn is_owned(&self) -> bool {
        self.len & OWNED != 0
    }

    /// As a `Cow`.
    pub fn into_cow(self) -> Cow<'static, str> {
        match self.as_static() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(self.as_str().to_owned()),
        }
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        if self.is_owned() {
            let len = self.len & !OWNED;
            let slice = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), len);
            // SAFETY: an owned name's `ptr` and length came from `Box::<str>::into_raw`, and
            // only this name frees it, once.
            drop(unsafe { Box::from_raw(slice as *mut str) });
        }
    }
}

impl Clone for Name {
    fn clone(&self) -> Self {
        match self.as_static() {
            Some(s) => Name::borrowed(s),
            None => Name::owned(self.as_str().into()),
        }
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Default for Name {
    fn default() -> Self {
        Name::borrowed("")
    }
}

impl From<&'static str> for Name {
    fn from(s: &'static str) -> Self {
        Name::borrowed(s)
    }
}

impl From<String> for Name {
    fn from(s: String) -> Self {
        Name::owned(s.into_boxed_str())
    }
}

impl From<Box<str>> for Name {
    fn from(s: Box<str>) -> Self {
        Name::owned(s)
    }
}

impl From<Cow<'static, str>> for Name {
    fn from(s: Cow<'static, str>) -> Self {
        match s {
            Cow::Borrowed(s) => Name::borrowed(s),
            Cow::Owned(s) => s.into(),
        }
    }
}

impl From<Name> for String {
    fn from(name: Name) -> Self {
        name.as_str().to_owned()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        self == other.as_str()
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Name::from)
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use super::Name;

    #[test]
    fn a_name_is_two_words_and_its_option_too() {
        assert_eq!(size_of::<Name>(), 2 * size_of::<usize>());
        assert_eq!(size_of::<Option<Name>>(), 2 * size_of::<usize>());
    }

    #[test]
    fn a_name_reads_as_the_string_it_was_made_from_borrowed_or_owned() {
        let borrowed = Name::from("reserve_inventory");
        let owned = Name::from(String::from("reserve_inventory"));
        for name in [&borrowed, &owned] {
            assert_eq!(name.as_str(), "reserve_inventory");
            assert_eq!(*name, "reserve_inventory");
            assert_eq!(name.to_string(), "reserve_inventory");
            assert_eq!(format!("{name:?}"), "\"reserve_inventory\"");
        }
        assert_eq!(borrowed, owned);
        assert_eq!(borrowed.as_static(), Some("reserve_inventory"));
        assert_eq!(owned.as_static(), None);
        assert!(!borrowed.is_owned() && owned.is_owned());
        let (a, b) = (owned.clone(), borrowed.clone());
        drop((owned, borrowed));
        assert_eq!(
            (a.as_str(), b.as_str()),
            ("reserve_inventory", "reserve_inventory")
        );
        assert!(a.is_owned() && !b.is_owned());
        let empty = Name::from(String::new());
        assert_eq!(empty.as_str(), "");
        assert_eq!(Name::default(), empty);
    }

    #[test]
    fn a_name_is_a_json_string() {
        let name: Name = serde_json::from_str("\"ship\"").unwrap();
        assert!(name.is_owned());
        assert_eq!(name, "ship");
        assert_eq!(
            serde_json::to_string(&Name::from("ship")).unwrap(),
            "\"ship\""
        );
    }
}
