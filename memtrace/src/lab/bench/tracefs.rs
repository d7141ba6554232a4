//! tracefs for bpftrace and for the kernel tests' own event counts (memtrace itself does not
//! need it): mounted only when it is not there, and unmounted again afterwards.
use std::{ffi::CStr, path::Path};

use crate::Error;

const MOUNT_POINT: &CStr = c"/sys/kernel/tracing";

/// tracefs available at /sys/kernel/tracing while this lives.
#[derive(Debug)]
pub struct Tracefs {
    /// We mounted it, so we unmount it.
    mounted_by_us: bool,
}

impl Tracefs {
    /// Mounts tracefs if /sys/kernel/tracing/events is missing or empty.
    pub fn ensure() -> Result<Self, Error> {
        if has_events(Path::new("/sys/kernel/tracing/events")) {
            return Ok(Self {
                mounted_by_us: false,
            });
        }
        // SAFETY: NUL-terminated strings; no mount data.
        let rc = unsafe {
            libc::mount(
                c"nodev".as_ptr(),
                MOUNT_POINT.as_ptr(),
                c"tracefs".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(Error::io(
                "mounting tracefs on /sys/kernel/tracing",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Self {
            mounted_by_us: true,
        })
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        if self.mounted_by_us {
            // SAFETY: NUL-terminated path; we mounted it.
            if unsafe { libc::umount(MOUNT_POINT.as_ptr()) } != 0 {
                log::warn!(
                    "could not unmount the tracefs mounted here: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

fn has_events(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_or_missing_directories_have_no_events() {
        assert!(!has_events(Path::new("/nonexistent/memtrace/events")));
        assert!(has_events(Path::new("/proc/self")));
    }
}
