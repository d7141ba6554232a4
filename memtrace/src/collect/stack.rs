//! The trigger's kernel stack, symbolized from /proc/kallsyms. Kernels that hide addresses
//! (kptr_restrict) show zeros there: the stack is then "unavailable", never an error.
use std::collections::BTreeMap;

/// Kernel symbols by address, loaded once, on the first OOM kill.
#[derive(Default)]
pub struct Symbolizer {
    symbols: Option<Result<BTreeMap<u64, String>, String>>,
}

impl Symbolizer {
    /// `name+0xoffset` for every address, innermost first; `Err` says why not.
    pub fn symbolize(&mut self, addresses: &[u64]) -> Result<Vec<String>, String> {
        let symbols = self
            .symbols
            .get_or_insert_with(load)
            .as_ref()
            .map_err(Clone::clone)?;
        Ok(addresses.iter().map(|&a| name_of(symbols, a)).collect())
    }
}

fn load() -> Result<BTreeMap<u64, String>, String> {
    let symbols =
        aya::util::kernel_symbols().map_err(|e| format!("/proc/kallsyms unreadable: {e}"))?;
    usable(symbols)
}

/// Refuses a symbol table whose addresses are hidden (all zero).
pub fn usable(symbols: BTreeMap<u64, String>) -> Result<BTreeMap<u64, String>, String> {
    if symbols.keys().any(|&a| a != 0) {
        Ok(symbols)
    } else {
        Err("/proc/kallsyms hides kernel addresses (kptr_restrict)".into())
    }
}

/// The symbol containing `address`, as `name+0xoffset`.
pub fn name_of(symbols: &BTreeMap<u64, String>, address: u64) -> String {
    match symbols.range(..=address).next_back() {
        // kallsyms names of module symbols carry "\t[module]": keep the name.
        Some((start, name)) if *start != 0 => {
            let name = name.split_whitespace().next().unwrap_or(name);
            format!("{name}+{:#x}", address - start)
        }
        _ => format!("{address:#x}"),
    }
}

/// memtrace's own program and the tracepoint glue on top of every stack.
pub fn is_bpf_frame(function: &str) -> bool {
    function.starts_with("bpf_prog_")
        || function.starts_with("bpf_trace_run")
        || function.starts_with("__bpf_trace_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hidden_addresses() {
        let symbols = BTreeMap::from([
            (0x1000, "out_of_memory".to_string()),
            (0x2000, "try_charge_memcg".to_string()),
        ]);
        assert_eq!(name_of(&symbols, 0x2010), "try_charge_memcg+0x10");
        assert_eq!(name_of(&symbols, 0x1000), "out_of_memory+0x0");
        assert_eq!(name_of(&symbols, 0x10), "0x10");
        assert_eq!(
            crate::samples::oom::frame_function("try_charge_memcg+0x10"),
            "try_charge_memcg"
        );
        let hidden = BTreeMap::from([(0, "a".to_string()), (0, "b".to_string())]);
        assert!(usable(hidden).is_err());
        assert!(usable(symbols).is_ok());
    }
}
