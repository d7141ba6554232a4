//! Ownership markers of temporary swap: `/run/memtrace-sandbox-swap-<owner pid>-<tag>`, holding
//! the device path and the boot id, so that a later run can undo a SIGKILLed run's swap.
use super::swap::{self, Backing, TempSwap};
use super::{PREFIX, procs};
use crate::error::Error;
use std::path::{Path, PathBuf};

const MARKER_DIR: &str = "/run";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// Records that this process owns `device`; `tag` is `zram<N>` or `file<n>`. Returns the marker's path.
pub(super) fn write(tag: &str, device: &Path) -> Result<PathBuf, Error> {
    let name = format!("{PREFIX}-swap-{}-{tag}", std::process::id());
    let path = Path::new(MARKER_DIR).join(name);
    let content = format!("device={}\nboot_id={}\n", device.display(), boot_id());
    std::fs::write(&path, content)
        .map_err(|e| Error::io(format!("writing marker {}", path.display()), e))?;
    Ok(path)
}

/// Undoes the swap of every marker whose owner is gone; one line per removal.
pub(super) fn sweep(removed: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(MARKER_DIR) else {
        return;
    };
    let current_boot = boot_id();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((owner, tag)) = parse_name(&name) else {
            continue;
        };
        if procs::pid_alive(owner) {
            continue;
        }
        let content = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let Some((device, backing)) = parse_content(tag, &content, &current_boot) else {
            // Another boot's or a malformed marker: its device is gone or not ours; only the marker goes.
            if swap::remove_if_present(&entry.path()).is_ok() {
                removed.push(format!(
                    "removed stale swap marker {}",
                    entry.path().display()
                ));
            }
            continue;
        };
        let mut stale = TempSwap::adopt(device, backing, entry.path());
        match stale.remove() {
            Ok(()) => removed.push(format!(
                "removed stale swap {} of dead pid {owner}",
                stale.device().display()
            )),
            Err(e) => log::warn!("sweep: {e}"),
        }
    }
}

fn boot_id() -> String {
    std::fs::read_to_string(BOOT_ID)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Owner pid and tag from a marker name `memtrace-sandbox-swap-<pid>-<tag>`.
fn parse_name(name: &str) -> Option<(u32, &str)> {
    let rest = name.strip_prefix(PREFIX)?.strip_prefix("-swap-")?;
    let (pid, tag) = rest.split_once('-')?;
    Some((pid.parse().ok()?, tag))
}

/// The swap a marker describes, refusing anything memtrace would not have created: a zram device
/// must match the tag and this boot (after a reboot zramN may be someone else's); a file must
/// carry our prefix.
fn parse_content(tag: &str, content: &str, current_boot: &str) -> Option<(PathBuf, Backing)> {
    let field = |key: &str| {
        content
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    };
    let device = PathBuf::from(field("device")?);
    if let Some(index) = tag.strip_prefix("zram") {
        let index: u32 = index.parse().ok()?;
        let same_boot = !current_boot.is_empty() && field("boot_id") == Some(current_boot);
        let expected = PathBuf::from(format!("/dev/zram{index}"));
        (same_boot && device == expected).then_some((device, Backing::Zram(index)))
    } else {
        let ours = device
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(PREFIX));
        (tag.starts_with("file") && ours).then_some((device, Backing::File))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_names() {
        assert_eq!(
            parse_name("memtrace-sandbox-swap-42-zram3"),
            Some((42, "zram3"))
        );
        assert_eq!(
            parse_name("memtrace-sandbox-swap-42-file0"),
            Some((42, "file0"))
        );
        assert_eq!(parse_name("memtrace-sandbox-42-0"), None);
        assert_eq!(parse_name("memtrace-sandbox-swap-x-zram3"), None);
        assert_eq!(parse_name("utmp"), None);
    }

    #[test]
    fn zram_marker_needs_matching_device_and_boot() {
        let content = "device=/dev/zram3\nboot_id=abc\n";
        let expected = Some((PathBuf::from("/dev/zram3"), Backing::Zram(3)));
        assert_eq!(parse_content("zram3", content, "abc"), expected);
        assert_eq!(parse_content("zram3", content, "other-boot"), None);
        assert_eq!(parse_content("zram3", content, ""), None);
        assert_eq!(parse_content("zram4", content, "abc"), None);
        assert_eq!(
            parse_content("zram3", "device=/dev/vda\nboot_id=abc\n", "abc"),
            None
        );
        assert_eq!(parse_content("zram3", "garbage", "abc"), None);
    }

    #[test]
    fn file_marker_needs_our_prefix() {
        let path = "/var/tmp/memtrace-sandbox-9-2.swap";
        let content = format!("device={path}\nboot_id=x\n");
        let expected = Some((PathBuf::from(path), Backing::File));
        assert_eq!(parse_content("file2", &content, "y"), expected);
        assert_eq!(parse_content("file2", "device=/etc/passwd\n", "y"), None);
        assert_eq!(parse_content("other", &content, "y"), None);
    }
}
