//! Temporary swap: a new zram device (never an existing one), or a swap file as a fallback.
//!
//! Each one is recorded in a marker (see `marker.rs`) before it is set up, so that a later run
//! can undo the swap of a run that was SIGKILLed.
use super::{marker, sys};
use crate::error::Error;
use log::{debug, warn};
use std::ffi::CString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const ZRAM_CONTROL: &str = "/sys/class/zram-control";
/// Priority above the usual default swap (-2 and below), so the workload's pages go here.
const PRIORITY: libc::c_int = 100;
// From <sys/swap.h>; the libc crate does not export them.
const SWAP_FLAG_PREFER: libc::c_int = 0x8000;
const SWAP_FLAG_PRIO_MASK: libc::c_int = 0x7fff;

/// What is behind a temporary swap device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backing {
    /// zram device index, created by us through hot_add.
    Zram(u32),
    /// A swap file we created.
    File,
}

/// A swap area this process added; swapped off and deleted on `remove()` or drop.
#[derive(Debug)]
pub struct TempSwap {
    device: PathBuf,
    backing: Backing,
    marker: Option<PathBuf>,
    removed: bool,
}

impl TempSwap {
    /// Adds a temporary swap of `bytes` with priority 100: a new zram device, else a swap file in /var/tmp (or $MEMTRACE_SWAP_DIR).
    pub fn create(bytes: u64) -> Result<TempSwap, Error> {
        let zram_err = match create_zram(bytes) {
            Ok(swap) => return Ok(swap),
            Err(e) => e,
        };
        debug!("zram swap unavailable ({zram_err}); trying a swap file");
        create_file(bytes).map_err(|file_err| Error::Sandbox {
            what: "temporary swap".into(),
            reason: format!("zram: {zram_err}; swap file: {file_err}"),
        })
    }

    /// Takes charge of a swap a dead run left behind, described by its marker.
    pub(super) fn adopt(device: PathBuf, backing: Backing, marker: PathBuf) -> TempSwap {
        TempSwap {
            device,
            backing,
            marker: Some(marker),
            removed: false,
        }
    }

    /// The swap device or file, as /proc/swaps names it.
    pub fn device(&self) -> &Path {
        &self.device
    }

    /// swapoff, then reset and hot_remove the zram device (or delete the file), then the marker. Idempotent.
    pub fn remove(&mut self) -> Result<(), Error> {
        if self.removed {
            return Ok(());
        }
        swapoff(&self.device)?;
        match self.backing {
            Backing::Zram(index) => {
                // A device still open (udev probing it after swapoff) refuses with EBUSY for a moment.
                write_when_idle(&PathBuf::from(format!("/sys/block/zram{index}/reset")), "1")?;
                write_when_idle(
                    &Path::new(ZRAM_CONTROL).join("hot_remove"),
                    &index.to_string(),
                )?;
            }
            Backing::File => remove_if_present(&self.device)?,
        }
        if let Some(marker) = &self.marker {
            remove_if_present(marker)?;
        }
        self.removed = true;
        debug!("removed swap {}", self.device.display());
        Ok(())
    }
}

impl Drop for TempSwap {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            warn!("leaving swap {} behind: {e}", self.device.display());
        }
    }
}

fn create_zram(bytes: u64) -> Result<TempSwap, Error> {
    let control = Path::new(ZRAM_CONTROL);
    if !control.exists() {
        load_zram_module();
    }
    // hot_add hands out a brand-new device, so a zram the user already has is never touched.
    let text = sys::read(&control.join("hot_add"))?;
    let index: u32 = text.trim().parse().map_err(|_| Error::Sandbox {
        what: "zram hot_add".into(),
        reason: format!("unexpected content {text:?}"),
    })?;
    let mut swap = TempSwap {
        device: PathBuf::from(format!("/dev/zram{index}")),
        backing: Backing::Zram(index),
        marker: None,
        removed: false,
    };
    // From here on, an error drops `swap`, which resets and hot-removes the device again.
    swap.marker = Some(marker::write(&format!("zram{index}"), &swap.device)?);
    sys::write(
        &PathBuf::from(format!("/sys/block/zram{index}/disksize")),
        &bytes.to_string(),
    )?;
    // devtmpfs creates the node before hot_add returns; without devtmpfs it may never appear.
    if !swap.device.exists() {
        return Err(Error::Sandbox {
            what: swap.device.display().to_string(),
            reason: "no device node (is /dev a devtmpfs?)".into(),
        });
    }
    activate(&swap.device)?;
    Ok(swap)
}

/// Loads zram without its default device; a missing modprobe just means no zram.
fn load_zram_module() {
    for args in [&["zram", "num_devices=0"][..], &["zram"][..]] {
        match Command::new("modprobe").args(args).output() {
            Ok(out) if out.status.success() => return,
            Ok(out) => debug!(
                "modprobe {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => {
                // No modprobe binary: zram is only there if built in or already loaded.
                debug!("modprobe: {e}");
                return;
            }
        }
    }
}

fn create_file(bytes: u64) -> Result<TempSwap, Error> {
    let dir = std::env::var_os("MEMTRACE_SWAP_DIR")
        .map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from);
    let (name, n) = super::next_name();
    let mut swap = TempSwap {
        device: dir.join(format!("{name}.swap")),
        backing: Backing::File,
        marker: None,
        removed: false,
    };
    // Marker first, so that a run killed while writing the file still gets it deleted.
    swap.marker = Some(marker::write(&format!("file{n}"), &swap.device)?);
    let context = |e| Error::io(format!("writing swap file {}", swap.device.display()), e);
    // Zeros rather than fallocate: some filesystems refuse swap on unwritten extents.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&swap.device)
        .map_err(context)?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left).map_or(chunk.len(), |l| l.min(chunk.len()));
        file.write_all(&chunk[..n]).map_err(context)?;
        left -= n as u64;
    }
    file.sync_all().map_err(context)?;
    drop(file);
    activate(&swap.device)?;
    Ok(swap)
}

/// mkswap, then swapon with our priority.
fn activate(device: &Path) -> Result<(), Error> {
    let out = Command::new("mkswap")
        .arg(device)
        .output()
        .map_err(|e| Error::io("running mkswap", e))?;
    if !out.status.success() {
        return Err(Error::Sandbox {
            what: format!("mkswap {}", device.display()),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let path = c_path(device)?;
    let flags = SWAP_FLAG_PREFER | (PRIORITY & SWAP_FLAG_PRIO_MASK);
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::swapon(path.as_ptr(), flags) } != 0 {
        return Err(Error::io(
            format!("swapon {}", device.display()),
            io::Error::last_os_error(),
        ));
    }
    debug!("swap on {} ({PRIORITY})", device.display());
    Ok(())
}

/// swapoff; a device that is not (or no longer) swapped on is fine. May take a while if it holds pages.
fn swapoff(device: &Path) -> Result<(), Error> {
    let path = c_path(device)?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::swapoff(path.as_ptr()) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL | libc::ENOENT) => Ok(()),
        _ => Err(Error::io(format!("swapoff {}", device.display()), e)),
    }
}

fn c_path(path: &Path) -> Result<CString, Error> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|e| Error::io(format!("path {}", path.display()), e.into()))
}

/// Writes a sysfs control file, retrying while the device is busy; a vanished device is fine.
fn write_when_idle(path: &Path, value: &str) -> Result<(), Error> {
    let done = sys::poll(sys::REMOVE_TIMEOUT, || match sys::write_raw(path, value) {
        Ok(()) => Ok(Some(())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Some(())),
        Err(e) if sys::is_busy(&e) => Ok(None),
        Err(e) => Err(Error::io(
            format!("writing {value:?} to {}", path.display()),
            e,
        )),
    })?;
    done.ok_or_else(|| Error::Sandbox {
        what: path.display().to_string(),
        reason: "device still busy".into(),
    })
}

pub(super) fn remove_if_present(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(Error::io(format!("deleting {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs root: adds and removes a real swap file"]
    fn file_fallback_round_trip() {
        let swaps = || std::fs::read_to_string("/proc/swaps").expect("/proc/swaps");
        let mut swap = create_file(16 << 20).expect("swap file");
        let device = swap.device().to_owned();
        let marker = swap.marker.clone().expect("marker");
        assert!(swaps().contains(&*device.to_string_lossy()));
        assert!(marker.exists());
        swap.remove().expect("remove");
        swap.remove().expect("idempotent");
        assert!(!swaps().contains(&*device.to_string_lossy()));
        assert!(!device.exists() && !marker.exists());
    }
}
