//! `record --stacks`: the pages faults brought in under each stack, read from the kernel's count
//! map at every interval's close as differences, and named while the processes live (blazesym:
//! user frames from the process's ELF symbols, kernel frames from kallsyms). Holds one entry per
//! key of the kernel's map, so it is bounded by the map's size.
use std::collections::HashMap;

use blazesym::{
    Pid,
    symbolize::{
        Input, Symbolized, Symbolizer,
        source::{Kernel, Process, Source},
    },
};
use memtrace_common::growth::{MAX_STACK_KEYS, StackKey};

use super::loader::Tracer;
use crate::samples::growth::{KERNEL_UNAVAILABLE, StackSample, StacksInterval, USER_UNAVAILABLE};

/// Addresses below this are not code: what a frame-pointer walk reads past the last frame.
const LOWEST_CODE: u64 = 0x1000;
/// The name of a frame blazesym could not name.
pub const UNKNOWN: &str = "[unknown]";

/// A key's frames, named once.
struct Named {
    comm: String,
    frames: Vec<String>,
    user_frames: u32,
}

/// The stacks counted so far and their names.
pub struct StackReader {
    symbolizer: Symbolizer,
    pages: HashMap<StackKey, u64>,
    named: HashMap<StackKey, Named>,
    kernel: HashMap<i32, Vec<String>>,
}

impl Default for StackReader {
    fn default() -> Self {
        Self {
            symbolizer: Symbolizer::new(),
            pages: HashMap::new(),
            named: HashMap::new(),
            kernel: HashMap::new(),
        }
    }
}

impl StackReader {
    /// The interval's pages by stack: what each key gained since the last read.
    pub fn read(&mut self, tracer: &Tracer) -> StacksInterval {
        let counts = match tracer.stack_pages() {
            Ok(counts) => counts,
            Err(e) => {
                log::warn!("reading the fault stacks: {e}");
                return StacksInterval {
                    enabled: true,
                    ..StacksInterval::default()
                };
            }
        };
        let map_full = counts.len() >= MAX_STACK_KEYS as usize;
        let mut stacks = Vec::new();
        for (key, total) in counts {
            let before = self.pages.insert(key, total).unwrap_or(0);
            let pages = total.saturating_sub(before);
            if pages == 0 {
                continue;
            }
            if !self.named.contains_key(&key) {
                let named = self.name(tracer, &key);
                self.named.insert(key, named);
            }
            let Some(named) = self.named.get(&key) else {
                continue;
            };
            stacks.push(StackSample {
                pid: key.tgid,
                comm: named.comm.clone(),
                frames: named.frames.clone(),
                user_frames: named.user_frames,
                pages,
            });
        }
        stacks.sort_by(|a, b| b.pages.cmp(&a.pages).then(a.frames.cmp(&b.frames)));
        StacksInterval {
            enabled: true,
            stacks,
            map_full,
        }
    }

    fn name(&mut self, tracer: &Tracer, key: &StackKey) -> Named {
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", key.tgid))
            .map(|c| c.trim_end().to_string())
            .unwrap_or_else(|_| format!("pid {}", key.tgid));
        let mut frames = match stack_ips(tracer, key.user_stack) {
            Some(ips) => {
                let ips: Vec<u64> = ips.into_iter().filter(|&ip| ip >= LOWEST_CODE).collect();
                let names = self.symbolize(&user_source(key.tgid), &ips);
                outermost_first(&ips, names)
            }
            None => vec![USER_UNAVAILABLE.to_string()],
        };
        let user_frames = frames.len() as u32;
        let kernel = match self.kernel.get(&key.kernel_stack) {
            Some(kernel) => kernel.clone(),
            None => {
                let kernel = match stack_ips(tracer, key.kernel_stack) {
                    Some(ips) => {
                        let names = self.symbolize(&kernel_source(), &ips);
                        outermost_first(&ips, names)
                    }
                    None => vec![KERNEL_UNAVAILABLE.to_string()],
                };
                self.kernel.insert(key.kernel_stack, kernel.clone());
                kernel
            }
        };
        frames.extend(kernel);
        Named {
            comm,
            frames,
            user_frames,
        }
    }

    fn symbolize(&self, source: &Source<'_>, ips: &[u64]) -> Vec<Option<String>> {
        if ips.is_empty() {
            return Vec::new();
        }
        match self.symbolizer.symbolize(source, Input::AbsAddr(ips)) {
            Ok(symbols) => symbols.iter().map(name_of).collect(),
            // The process ended, or its files are gone: the frames stay unnamed.
            Err(_) => vec![None; ips.len()],
        }
    }
}

/// The addresses of a stack id, `None` when the kernel could not take it (a negative id).
fn stack_ips(tracer: &Tracer, id: i32) -> Option<Vec<u64>> {
    let id = u32::try_from(id).ok()?;
    tracer.fault_stack(id).ok()
}

fn user_source(pid: u32) -> Source<'static> {
    let mut process = Process::new(Pid::from(pid));
    process.perf_map = false;
    Source::Process(process)
}

fn kernel_source() -> Source<'static> {
    // kallsyms only: no search for a vmlinux with debug information.
    Source::Kernel(Kernel {
        vmlinux: blazesym::MaybeDefault::None,
        debug_syms: false,
        ..Kernel::default()
    })
}

fn name_of(symbol: &Symbolized<'_>) -> Option<String> {
    symbol.as_sym().map(|sym| sym.name.to_string())
}

/// Names for the addresses (innermost first, as the kernel gives them), outermost first, fit
/// for folded lines: `;` would split a frame, so it becomes `:`.
pub fn outermost_first(ips: &[u64], names: Vec<Option<String>>) -> Vec<String> {
    let mut frames: Vec<String> = ips
        .iter()
        .zip(names.into_iter().chain(std::iter::repeat(None)))
        .map(|(_, name)| name.map_or_else(|| UNKNOWN.to_string(), |n| n.replace(';', ":")))
        .collect();
    frames.reverse();
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_go_outermost_first_and_unknown_ones_are_marked() {
        let frames = outermost_first(
            &[0x10, 0x20, 0x30],
            vec![
                Some("leaf".into()),
                None,
                Some("<[u8; 4] as Foo>::main".into()),
            ],
        );
        assert_eq!(frames, vec!["<[u8: 4] as Foo>::main", UNKNOWN, "leaf"]);
        assert_eq!(outermost_first(&[0x10], vec![]), vec![UNKNOWN]);
    }

    #[test]
    fn the_kernel_names_its_own_functions() {
        // kallsyms is readable to every user, its addresses only to root: a non-root run sees
        // zeros and names nothing, which is also an answer.
        let Some(ip) = std::fs::read_to_string("/proc/kallsyms")
            .ok()
            .and_then(|text| {
                text.lines().find_map(|line| {
                    let mut fields = line.split_whitespace();
                    let address = u64::from_str_radix(fields.next()?, 16).ok()?;
                    (fields.nth(1)? == "vfs_read" && address != 0).then_some(address)
                })
            })
        else {
            return;
        };
        let reader = StackReader::default();
        let names = reader.symbolize(&kernel_source(), &[ip + 1]);
        assert_eq!(names, vec![Some("vfs_read".to_string())]);
    }
}
