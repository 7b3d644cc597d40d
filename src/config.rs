//! What every config shares: `new(required)`, then one setter per field.

/// Writes a builder-style setter per listed field:
/// `pub fn field(mut self, v: T) -> Self`, with the given doc.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty;)*) => {$(
        $(#[$doc])*
        #[must_use]
        pub fn $field(mut self, v: $ty) -> Self {
            self.$field = v;
            self
        }
    )*};
}
pub(crate) use setters;
