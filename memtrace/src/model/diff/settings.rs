//! The machine settings of both runs that decide how memory is reclaimed: the kernel and the vm
//! tunables, as each recording's header kept them. A difference here explains a difference in
//! the figures, so each one is marked.
use serde::{Deserialize, Serialize};

use crate::{model::Model, samples::host::Tunables};

/// One setting in both runs; `null` where the kernel has no such file (or an older recording
/// did not keep it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub name: String,
    pub a: Option<String>,
    pub b: Option<String>,
    pub differs: bool,
}

/// The kernel release and every vm tunable, in a fixed order.
pub fn of(a: &Model, b: &Model) -> Vec<Setting> {
    let kernel = |m: &Model| Some(m.header.host.kernel_release.clone()).filter(|k| !k.is_empty());
    let mut settings = vec![setting("kernel", kernel(a), kernel(b))];
    let (ta, tb) = (
        tunables(&a.header.host.tunables),
        tunables(&b.header.host.tunables),
    );
    for ((name, va), (_, vb)) in ta.into_iter().zip(tb) {
        settings.push(setting(name, va, vb));
    }
    settings
}

fn setting(name: &str, a: Option<String>, b: Option<String>) -> Setting {
    Setting {
        name: name.to_string(),
        differs: a != b,
        a,
        b,
    }
}

fn tunables(t: &Tunables) -> [(&'static str, Option<String>); 7] {
    let number = |v: Option<u64>| v.map(|v| v.to_string());
    [
        ("swappiness", number(t.swappiness)),
        ("min_free_kbytes", number(t.min_free_kbytes)),
        ("watermark_scale_factor", number(t.watermark_scale_factor)),
        ("zone_reclaim_mode", number(t.zone_reclaim_mode)),
        ("overcommit_memory", number(t.overcommit_memory)),
        ("thp_enabled", t.thp_enabled.clone()),
        ("thp_defrag", t.thp_defrag.clone()),
    ]
}
