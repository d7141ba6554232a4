//! gfp flags decoded to the kernel's names (`GFP_KERNEL|__GFP_COMP`), as the kernel's own
//! `show_gfp_flags` prints them: composite names first, then the remaining single bits. Bit
//! numbers come from the running kernel's BTF (`___GFP_*_BIT`), since they depend on its
//! configuration.
use std::collections::HashMap;

/// Names of gfp bits of the running kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GfpNames {
    /// `__GFP_IO` -> bit number, for every bit the kernel defines.
    bits: HashMap<String, u32>,
}

/// The composites `show_gfp_flags` tries, in its order, as lists of single-bit names. A
/// composite applies when all its bits are set. `-` marks bits that must be clear.
const COMPOSITES: [(&str, &[&str]); 10] = [
    (
        "GFP_TRANSHUGE",
        &[
            "__GFP_HIGHMEM",
            "__GFP_MOVABLE",
            "__GFP_IO",
            "__GFP_FS",
            "__GFP_HARDWALL",
            "__GFP_COMP",
            "__GFP_NOMEMALLOC",
            "__GFP_NOWARN",
            "__GFP_DIRECT_RECLAIM",
        ],
    ),
    (
        "GFP_TRANSHUGE_LIGHT",
        &[
            "__GFP_HIGHMEM",
            "__GFP_MOVABLE",
            "__GFP_IO",
            "__GFP_FS",
            "__GFP_HARDWALL",
            "__GFP_COMP",
            "__GFP_NOMEMALLOC",
            "__GFP_NOWARN",
        ],
    ),
    (
        "GFP_HIGHUSER_MOVABLE",
        &[
            "__GFP_DIRECT_RECLAIM",
            "__GFP_KSWAPD_RECLAIM",
            "__GFP_IO",
            "__GFP_FS",
            "__GFP_HARDWALL",
            "__GFP_HIGHMEM",
            "__GFP_MOVABLE",
        ],
    ),
    (
        "GFP_HIGHUSER",
        &[
            "__GFP_DIRECT_RECLAIM",
            "__GFP_KSWAPD_RECLAIM",
            "__GFP_IO",
            "__GFP_FS",
            "__GFP_HARDWALL",
            "__GFP_HIGHMEM",
        ],
    ),
    (
        "GFP_USER",
        &[
            "__GFP_DIRECT_RECLAIM",
            "__GFP_KSWAPD_RECLAIM",
            "__GFP_IO",
            "__GFP_FS",
            "__GFP_HARDWALL",
        ],
    ),
    (
        "GFP_KERNEL_ACCOUNT",
        &[
            "__GFP_DIRECT_RECLAIM",
            "__GFP_KSWAPD_RECLAIM",
            "__GFP_IO",
            "__GFP_FS",
            "__GFP_ACCOUNT",
        ],
    ),
    (
        "GFP_KERNEL",
        &[
            "__GFP_DIRECT_RECLAIM",
            "__GFP_KSWAPD_RECLAIM",
            "__GFP_IO",
            "__GFP_FS",
        ],
    ),
    (
        "GFP_NOFS",
        &["__GFP_DIRECT_RECLAIM", "__GFP_KSWAPD_RECLAIM", "__GFP_IO"],
    ),
    ("GFP_ATOMIC", &["__GFP_HIGH", "__GFP_KSWAPD_RECLAIM"]),
    (
        "GFP_NOIO",
        &["__GFP_DIRECT_RECLAIM", "__GFP_KSWAPD_RECLAIM"],
    ),
];

impl GfpNames {
    /// From `(enumerator, value)` pairs of the kernel's gfp bit enum (`___GFP_IO_BIT`, 6).
    pub fn from_enum<'a>(pairs: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        let bits = pairs
            .into_iter()
            .filter_map(|(name, bit)| {
                let flag = name.strip_prefix("___GFP_")?.strip_suffix("_BIT")?;
                (flag != "LAST").then(|| (format!("__GFP_{flag}"), bit))
            })
            .collect();
        Self { bits }
    }

    fn mask(&self, names: &[&str]) -> Option<u32> {
        names.iter().try_fold(0u32, |mask, name| {
            Some(mask | 1u32.checked_shl(*self.bits.get(*name)?)?)
        })
    }

    /// `GFP_HIGHUSER_MOVABLE|__GFP_COMP`, or the hex value when the bits are unknown.
    pub fn decode(&self, flags: u32) -> String {
        if flags == 0 {
            return "0".to_string();
        }
        if self.bits.is_empty() {
            return format!("{flags:#x}");
        }
        let mut left = flags;
        let mut names = Vec::new();
        for (name, bits) in COMPOSITES {
            if let Some(mask) = self.mask(bits)
                && left & mask == mask
            {
                names.push(name.to_string());
                left &= !mask;
            }
        }
        let mut singles: Vec<(&String, &u32)> = self.bits.iter().collect();
        singles.sort_by_key(|(_, bit)| **bit);
        for (name, bit) in singles {
            if left & (1 << bit) != 0 {
                names.push(name.clone());
                left &= !(1 << bit);
            }
        }
        if left != 0 {
            names.push(format!("{left:#x}"));
        }
        names.join("|")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bit order of Linux 6.10+ without KASAN or lockdep.
    fn linux_6_18() -> GfpNames {
        let owned = crate::report::fixture::gfp_bits();
        GfpNames::from_enum(owned.iter().map(|(n, b)| (n.as_str(), *b)))
    }

    #[test]
    fn common_allocations_decode_to_the_kernels_names() {
        let gfp = linux_6_18();
        // GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS = 0xcc0 on these kernels.
        assert_eq!(gfp.decode(0xcc0), "GFP_KERNEL");
        assert_eq!(gfp.decode(0xcc0 | (1 << 22)), "GFP_KERNEL_ACCOUNT");
        // GFP_HIGHUSER_MOVABLE = GFP_USER | __GFP_HIGHMEM | __GFP_MOVABLE = 0x100cca.
        assert_eq!(gfp.decode(0x10_0cca), "GFP_HIGHUSER_MOVABLE");
        assert_eq!(
            gfp.decode(0x10_0cca | (1 << 18)),
            "GFP_HIGHUSER_MOVABLE|__GFP_COMP"
        );
        assert_eq!(gfp.decode(0x800), "__GFP_KSWAPD_RECLAIM");
    }

    #[test]
    fn unknown_bits_stay_visible() {
        assert_eq!(linux_6_18().decode(1 << 30), "0x40000000");
        assert_eq!(GfpNames::default().decode(0xcc0), "0xcc0");
        assert_eq!(GfpNames::default().decode(0), "0");
    }
}
