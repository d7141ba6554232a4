//! A memory mapping for the workloads, which fault on purpose: one access per page.
use std::ptr::NonNull;

use super::PAGE;

/// An anonymous or file mapping, unmapped on drop.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes: of the file `fd` (shared, read-only) or anonymous (private, writable).
    pub fn new(len: usize, fd: Option<i32>) -> std::io::Result<Self> {
        let (flags, fd) = match fd {
            Some(fd) => (libc::MAP_SHARED, fd),
            None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1),
        };
        let prot = libc::PROT_READ | (libc::PROT_WRITE * i32::from(fd < 0));
        // SAFETY: a fresh mapping with no address hint; failure is MAP_FAILED.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        NonNull::new(ptr.cast())
            .map(|ptr| Self { ptr, len })
            .ok_or_else(|| std::io::Error::other("null mapping"))
    }

    /// `len` bytes of private anonymous memory without transparent huge pages, which would
    /// turn 512 page faults into one.
    pub fn anonymous(len: usize) -> std::io::Result<Self> {
        let map = Self::new(len, None)?;
        map.advise(libc::MADV_NOHUGEPAGE)?;
        Ok(map)
    }

    /// The mapping's first byte.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// `madvise` over `len` bytes from `offset` (page-aligned, inside the mapping).
    pub fn advise_range(&self, offset: usize, len: usize, advice: i32) -> std::io::Result<()> {
        if offset.saturating_add(len) > self.len {
            return Err(std::io::Error::other("madvise range outside the mapping"));
        }
        // SAFETY: the range is inside this mapping.
        let at = unsafe { self.ptr.as_ptr().add(offset) };
        // SAFETY: as above.
        if unsafe { libc::madvise(at.cast(), len, advice) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// `madvise` over the whole mapping.
    pub fn advise(&self, advice: i32) -> std::io::Result<()> {
        // SAFETY: the range is this mapping.
        if unsafe { libc::madvise(self.ptr.as_ptr().cast(), self.len, advice) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads (or writes) one byte per page; volatile so the compiler keeps every access.
    pub fn touch_pages(&self, write: bool) -> u64 {
        let mut sum = 0u64;
        for offset in (0..self.len).step_by(PAGE) {
            // SAFETY: offset < len, inside the mapping.
            let byte = unsafe { self.ptr.as_ptr().add(offset) };
            if write {
                // SAFETY: as above; the mapping is writable when `write` is asked.
                unsafe { byte.write_volatile((offset / PAGE) as u8 | 1) };
            } else {
                // SAFETY: as above.
                sum += u64::from(unsafe { byte.read_volatile() });
            }
        }
        sum
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
