//! Where the JSON goes: checked up front without leaving anything behind, then written whole
//! into a regular file, through a symbolic link, or into a FIFO without replacing it.
use std::{
    io::{Read, Write},
    os::unix::fs::FileTypeExt,
    path::PathBuf,
};

use super::*;

/// A fresh directory under the system's temporary one, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("memtrace-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("a temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list it")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn the_up_front_check_leaves_no_file_behind() {
    let dir = TempDir::new("json-check");
    let new = dir.0.join("report.json");
    check_json_path(Some(&new)).expect("a writable new file");
    assert_eq!(entries(&dir.0), Vec::<String>::new());
    std::fs::write(&new, "old").expect("an existing file");
    check_json_path(Some(&new)).expect("a writable existing file");
    assert_eq!(std::fs::read_to_string(&new).expect("read it"), "old");
    let error = check_json_path(Some(&dir.0)).expect_err("a directory");
    assert_eq!(error.exit_code(), 2);
    let missing = dir.0.join("no-such-dir/report.json");
    assert!(check_json_path(Some(&missing)).is_err());
    assert_eq!(entries(&dir.0), ["report.json"]);
}

#[test]
fn a_symbolic_link_keeps_pointing_at_the_new_report() {
    let dir = TempDir::new("json-link");
    let target = dir.0.join("target.json");
    std::fs::write(&target, "old").expect("the target");
    let link = dir.0.join("link.json");
    std::os::unix::fs::symlink(&target, &link).expect("the link");
    write_file(&link, |out| out.write_all(b"{}")).expect("written");
    assert!(link.symlink_metadata().expect("the link").is_symlink());
    assert_eq!(std::fs::read_to_string(&target).expect("read it"), "{}");
    assert_eq!(entries(&dir.0), ["link.json", "target.json"]);
}

#[test]
fn a_fifo_is_written_into_not_replaced() {
    let dir = TempDir::new("json-fifo");
    let fifo = dir.0.join("fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("a C path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    check_json_path(Some(&fifo)).expect("a FIFO is fine");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            File::open(fifo)
                .and_then(|mut f| f.read_to_string(&mut text))
                .expect("read the FIFO");
            text
        })
    };
    write_file(&fifo, |out| out.write_all(b"{\"schema\":1}")).expect("written");
    assert_eq!(reader.join().expect("the reader"), "{\"schema\":1}");
    let meta = fifo.symlink_metadata().expect("still there");
    assert!(meta.file_type().is_fifo(), "replaced by {meta:?}");
    assert_eq!(entries(&dir.0), ["fifo"]);
}

#[test]
fn a_failed_write_leaves_the_old_report_and_no_partial_file() {
    let dir = TempDir::new("json-fail");
    let path = dir.0.join("report.json");
    std::fs::write(&path, "old").expect("an old report");
    let error = write_file(&path, |out| {
        out.write_all(b"{\"half")?;
        Err(io::Error::from_raw_os_error(libc::ENOSPC))
    })
    .expect_err("the disk is full");
    assert!(error.to_string().contains("No space left"), "{error}");
    assert_eq!(std::fs::read_to_string(&path).expect("read it"), "old");
    assert_eq!(entries(&dir.0), ["report.json"]);
}
