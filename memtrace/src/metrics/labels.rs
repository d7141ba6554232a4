//! The labels of a memory cgroup: its path relative to its hierarchy's root, and the Kubernetes
//! pod and container it belongs to, parsed from that path.
//!
//! Kubelet names the cgroups of a pod after its UID, and the container runtime names a
//! container's after its id:
//! - cgroupfs driver: `/kubepods[/burstable|/besteffort]/pod<uid>/<container id>` (containerd),
//!   or `.../pod<uid>/crio-<container id>` (CRI-O);
//! - systemd driver: `/kubepods.slice[/kubepods-burstable.slice]/kubepods[-burstable]-pod<uid
//!   with _ for ->.slice/cri-containerd-<id>.scope` (containerd), `crio-<id>.scope` (CRI-O) or
//!   `docker-<id>.scope`.
//!
//! The pod UID comes out with dashes, as the API server writes it (`kube_pod_info{uid}`), and
//! the container id bare, as `kube_pod_container_info{container_id}` holds it after its
//! `containerd://` or `cri-o://` scheme.

/// Kubernetes identity of a cgroup, where its path tells it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeIds {
    /// The pod's UID (dashes), empty outside a pod.
    pub pod_uid: String,
    /// The container's id (64 hex digits), empty for the pod's own cgroup or a runtime helper.
    pub container_id: String,
}

/// Where a cgroup hierarchy is mounted, and which of its directories shows there (`/` for its
/// root; a cgroup namespace shows a subtree).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: String,
    pub root: String,
}

/// `path` relative to its hierarchy's root, starting with `/`: the path below the mount it lies
/// under (the longest of `mounts` that is a prefix of it, component-wise), after that mount's
/// root; the path as it is when no mount holds it.
pub fn relative_path(path: &str, mounts: &[Mount]) -> String {
    let best = mounts
        .iter()
        // A cgroup namespace shows a mount of an outer hierarchy with a root of `/..`: the
        // path below the mount is then the best there is.
        .map(|m| {
            let root = m.root.trim_end_matches('/');
            let root = if root.contains("..") { "" } else { root };
            (m.mount_point.trim_end_matches('/'), root)
        })
        .filter(|(point, _)| {
            path.strip_prefix(point)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .max_by_key(|(point, _)| point.len());
    match best {
        Some((point, root)) => {
            let joined = format!("{root}{}", &path[point.len()..]);
            if joined.is_empty() {
                "/".to_string()
            } else {
                joined
            }
        }
        None => path.to_string(),
    }
}

/// The pod and container a cgroup path names, if it is under `kubepods`.
pub fn kube_ids(path: &str) -> KubeIds {
    let mut ids = KubeIds::default();
    let mut in_kubepods = false;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if part == "kubepods" || part == "kubepods.slice" {
            in_kubepods = true;
            continue;
        }
        if !in_kubepods {
            continue;
        }
        if ids.pod_uid.is_empty() {
            if let Some(uid) = pod_uid(part) {
                ids.pod_uid = uid;
            }
            continue;
        }
        if let Some(id) = container_id(part) {
            ids.container_id = id;
        }
        break;
    }
    ids
}

/// The UID in a pod's directory: `pod<uid>` (cgroupfs) or `kubepods[-class]-pod<uid_>.slice`
/// (systemd, which turns the UID's dashes into underscores).
fn pod_uid(part: &str) -> Option<String> {
    let uid = if let Some(slice) = part.strip_suffix(".slice") {
        let (_, uid) = slice.rsplit_once("-pod")?;
        uid.replace('_', "-")
    } else {
        part.strip_prefix("pod")?.to_string()
    };
    is_uid(&uid).then_some(uid)
}

/// A container's id in its directory's name: bare (containerd with cgroupfs), or after a
/// runtime prefix (`cri-containerd-`, `crio-`, `docker-`) with or without `.scope`.
/// CRI-O's monitor (`crio-conmon-<id>`) is not the container.
fn container_id(part: &str) -> Option<String> {
    let name = part.strip_suffix(".scope").unwrap_or(part);
    if name.starts_with("crio-conmon-") {
        return None;
    }
    let id = ["cri-containerd-", "crio-", "docker-"]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .unwrap_or(name);
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
}

/// 8-4-4-4-12 hex digits.
fn is_uid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "3f0c1b2a-9d8e-4c7b-a6f5-0123456789ab";
    const CID: &str = "0b5f1c8a2e7d4f3a9c6b1e0d8f7a2c4b5e6d7f8a9b0c1d2e3f4a5b6c7d8e9f0a";

    fn ids(path: &str) -> (String, String) {
        let k = kube_ids(path);
        (k.pod_uid, k.container_id)
    }

    #[test]
    fn cgroupfs_driver_with_containerd_and_crio() {
        let want = (UID.to_string(), CID.to_string());
        assert_eq!(ids(&format!("/kubepods/burstable/pod{UID}/{CID}")), want);
        assert_eq!(ids(&format!("/kubepods/besteffort/pod{UID}/{CID}")), want);
        // Guaranteed pods sit right under kubepods.
        assert_eq!(ids(&format!("/kubepods/pod{UID}/{CID}")), want);
        assert_eq!(
            ids(&format!("/kubepods/burstable/pod{UID}/crio-{CID}")),
            want
        );
    }

    #[test]
    fn systemd_driver_with_containerd_crio_and_docker() {
        let u = UID.replace('-', "_");
        let want = (UID.to_string(), CID.to_string());
        let burstable =
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice");
        assert_eq!(
            ids(&format!("{burstable}/cri-containerd-{CID}.scope")),
            want
        );
        assert_eq!(ids(&format!("{burstable}/crio-{CID}.scope")), want);
        assert_eq!(ids(&format!("{burstable}/docker-{CID}.scope")), want);
        let guaranteed =
            format!("/kubepods.slice/kubepods-pod{u}.slice/cri-containerd-{CID}.scope");
        assert_eq!(ids(&guaranteed), want);
    }

    #[test]
    fn pods_without_container_and_runtime_helpers() {
        let pod_only = (UID.to_string(), String::new());
        assert_eq!(ids(&format!("/kubepods/burstable/pod{UID}")), pod_only);
        let u = UID.replace('-', "_");
        let conmon = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/crio-conmon-{CID}.scope"
        );
        assert_eq!(ids(&conmon), pod_only);
        // A v1 hierarchy path relative to its root looks the same.
        assert_eq!(ids(&format!("/kubepods/pod{UID}/{CID}")).0, UID);
    }

    #[test]
    fn other_paths_have_no_kubernetes_ids() {
        for path in [
            "/",
            "/system.slice/containerd.service",
            "/user.slice/user-0.slice/session-1.scope",
            "/memtrace-sandbox-1234",
            &format!("/pod{UID}/{CID}"),
            "/kubepods/burstable/podnot-a-uid/abc",
            "/kubepods.slice/kubepods-burstable.slice",
        ] {
            assert_eq!(ids(path), (String::new(), String::new()), "{path}");
        }
    }

    #[test]
    fn paths_are_relative_to_their_mount() {
        let mount = |point: &str, root: &str| Mount {
            mount_point: point.into(),
            root: root.into(),
        };
        let mounts = [
            mount("/sys/fs/cgroup/memory", "/"),
            mount("/sys/fs/cgroup/unified", "/"),
            mount("/sys/fs/cgroup", "/"),
            // A cgroup namespace's view of its own subtree.
            mount("/host/cgroup", "/kubepods.slice"),
        ];
        assert_eq!(relative_path("/sys/fs/cgroup/memory/a/b", &mounts), "/a/b");
        assert_eq!(relative_path("/sys/fs/cgroup/memory", &mounts), "/");
        assert_eq!(
            relative_path("/sys/fs/cgroup/kubepods.slice", &mounts),
            "/kubepods.slice"
        );
        // A sibling whose name merely starts like a mount is not under it.
        assert_eq!(
            relative_path("/sys/fs/cgroup/memoryx/a", &mounts),
            "/memoryx/a"
        );
        assert_eq!(relative_path("/elsewhere/a", &mounts), "/elsewhere/a");
        assert_eq!(
            relative_path("/host/cgroup/x.slice", &mounts),
            "/kubepods.slice/x.slice"
        );
        assert_eq!(relative_path("/host/cgroup", &mounts), "/kubepods.slice");
        let outside = [mount("/sys/fs/cgroup", "/../../..")];
        assert_eq!(
            relative_path("/sys/fs/cgroup/a.slice", &outside),
            "/a.slice"
        );
    }
}
