//! Which memory cgroup of one run is which of the other. By path first; then, since a
//! container's, a pod's or a sandbox's cgroup is named after an id that changes with every run
//! (`docker-3f2a….scope`, `pod7c1e…`, `memtrace-sandbox-4242-0`), the leftovers whose paths are
//! the same once every token holding a digit is a wildcard, when exactly one of each run has
//! that shape. An ambiguous shape is left unpaired rather than guessed.
use std::collections::BTreeMap;

/// The path with every token (between `/ - _ . : @`) that holds a digit replaced by `*`.
pub fn shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if token.chars().any(|c| c.is_ascii_digit()) {
            out.push('*');
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in path.chars() {
        if matches!(c, '/' | '-' | '_' | '.' | ':' | '@') {
            flush(&mut token, &mut out);
            out.push(c);
        } else {
            token.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

/// Pairs the keys of run A with those of run B: `(Some, Some)` for a match, `(Some, None)` and
/// `(None, Some)` for a cgroup of one run only. Keys that are not paths (`(memcg inode 7)`) are
/// only ever matched exactly.
pub fn pair(a: &[String], b: &[String]) -> Vec<(Option<String>, Option<String>)> {
    let mut pairs: Vec<(Option<String>, Option<String>)> = Vec::new();
    let mut left_a: Vec<&String> = Vec::new();
    for key in a {
        if b.contains(key) {
            pairs.push((Some(key.clone()), Some(key.clone())));
        } else {
            left_a.push(key);
        }
    }
    let left_b: Vec<&String> = b.iter().filter(|key| !a.contains(key)).collect();
    let by_shape = |keys: &[&String]| {
        let mut shapes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for key in keys.iter().filter(|k| k.starts_with('/')) {
            shapes.entry(shape(key)).or_default().push((*key).clone());
        }
        shapes
    };
    let (shapes_a, shapes_b) = (by_shape(&left_a), by_shape(&left_b));
    let mut paired: Vec<&String> = Vec::new();
    for (shape, keys_a) in &shapes_a {
        if let (Some(keys_b), [key_a]) = (shapes_b.get(shape), keys_a.as_slice())
            && let [key_b] = keys_b.as_slice()
        {
            pairs.push((Some(key_a.clone()), Some(key_b.clone())));
            paired.extend([key_a, key_b]);
        }
    }
    let unpaired = |key: &&String| !paired.contains(key);
    pairs.extend(
        left_a
            .into_iter()
            .filter(unpaired)
            .map(|k| (Some(k.clone()), None)),
    );
    pairs.extend(
        left_b
            .into_iter()
            .filter(unpaired)
            .map(|k| (None, Some(k.clone()))),
    );
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn ids_become_wildcards() {
        assert_eq!(
            shape("/sys/fs/cgroup/memory/memtrace-sandbox-4242-0"),
            "/sys/fs/cgroup/memory/memtrace-sandbox-*-*"
        );
        assert_eq!(
            shape("/system.slice/docker-3f2a9c.scope"),
            "/system.slice/docker-*.scope"
        );
        assert_eq!(
            shape("/kubepods/burstable/pod7c1e-11aa/cri-containerd-9b"),
            "/kubepods/burstable/*-*/cri-containerd-*"
        );
        assert_eq!(shape("/db.slice"), "/db.slice");
    }

    #[test]
    fn same_paths_pair_first_then_unique_shapes() {
        let a = keys(&["/db.slice", "/sys/fs/cgroup/memory/memtrace-sandbox-10-0"]);
        let b = keys(&["/sys/fs/cgroup/memory/memtrace-sandbox-10-2", "/db.slice"]);
        assert_eq!(
            pair(&a, &b),
            [
                (Some("/db.slice".into()), Some("/db.slice".into())),
                (
                    Some("/sys/fs/cgroup/memory/memtrace-sandbox-10-0".into()),
                    Some("/sys/fs/cgroup/memory/memtrace-sandbox-10-2".into())
                ),
            ]
        );
    }

    #[test]
    fn ambiguous_shapes_and_non_paths_stay_apart() {
        let a = keys(&["/docker-1.scope", "/docker-2.scope", "(memcg inode 7)"]);
        let b = keys(&["/docker-3.scope", "(memcg inode 9)", "/web.slice"]);
        let pairs = pair(&a, &b);
        assert_eq!(pairs.len(), 6, "{pairs:?}");
        assert!(pairs.iter().all(|(a, b)| a.is_none() || b.is_none()));
        assert!(pairs.contains(&(None, Some("/web.slice".into()))));
        assert!(pairs.contains(&(Some("(memcg inode 7)".into()), None)));
    }
}
