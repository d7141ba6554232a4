//! Declares an id enum once: its stable numbers, its stable names, `ALL`, `name()` and
//! `TryFrom<u32>` (an unknown number is an error the decoder counts, never another kind).

/// `ids! { /// doc  pub enum Name { /// doc  Variant = 1 => "name", ... } }`
#[macro_export]
macro_rules! ids {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [Self; $crate::ids!(@count $($variant)+)] = [$(Self::$variant),+];

            /// The stable name used in tables, JSON, recordings and metrics.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        impl TryFrom<u32> for $name {
            type Error = u32;

            fn try_from(value: u32) -> Result<Self, u32> {
                match value {
                    $( $value => Ok(Self::$variant), )+
                    other => Err(other),
                }
            }
        }
    };
    (@count) => { 0 };
    (@count $head:ident $($tail:ident)*) => { 1 + $crate::ids!(@count $($tail)*) };
}
