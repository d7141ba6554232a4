//! `record --stacks` over the recording: pages brought in by faults per folded stack
//! (`comm;user frames;kernel frames`), what a flame graph draws. At most [`KEEP_STACKS`] are
//! kept one by one; past that the smallest fold into one `[other stacks]` line per command, so
//! every page still counts.
use std::collections::HashMap;

use crate::samples::growth::{StacksInterval, USER_UNAVAILABLE};

/// Folded stacks kept one by one.
pub const KEEP_STACKS: usize = 20_000;
/// The frame the folded stacks go under past [`KEEP_STACKS`].
pub const OTHER_STACKS: &str = "[other stacks]";

/// Pages by folded stack.
#[derive(Clone, Debug, Default)]
pub struct StackLog {
    /// Stacks were counted in some interval.
    pub enabled: bool,
    folded: HashMap<String, u64>,
    pub pages: u64,
    /// Pages whose user stack had one frame or none: a walk that stopped at once, the mark of
    /// a program built without frame pointers.
    pub shallow_pages: u64,
    /// Pages whose user stack the kernel could not read.
    pub unavailable_pages: u64,
    /// The kernel's count map filled up in some interval.
    pub map_full: bool,
    /// Pages by the innermost user frame and command (`(frame, comm)`), as many as stacks.
    leaves: HashMap<(String, String), u64>,
}

impl StackLog {
    pub fn apply(&mut self, interval: &StacksInterval) {
        self.enabled |= interval.enabled;
        self.map_full |= interval.map_full;
        for stack in &interval.stacks {
            self.pages += stack.pages;
            let user = &stack.frames[..(stack.user_frames as usize).min(stack.frames.len())];
            if user.first().map(String::as_str) == Some(USER_UNAVAILABLE) {
                self.unavailable_pages += stack.pages;
            } else if user.len() <= 1 {
                self.shallow_pages += stack.pages;
            }
            let mut line = stack.comm.replace(';', ":");
            for frame in &stack.frames {
                line.push(';');
                line.push_str(frame);
            }
            *self.folded.entry(line).or_default() += stack.pages;
            if let Some(leaf) = user.last() {
                *self
                    .leaves
                    .entry((leaf.clone(), stack.comm.clone()))
                    .or_default() += stack.pages;
            }
        }
        if self.folded.len() > KEEP_STACKS {
            self.fold_smallest();
        }
        if self.leaves.len() > KEEP_STACKS {
            let mut all: Vec<_> = self.leaves.drain().collect();
            all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(KEEP_STACKS / 2);
            self.leaves.extend(all);
        }
    }

    /// Folds the smaller half of the stacks into `[other stacks]` under their command.
    fn fold_smallest(&mut self) {
        let mut all: Vec<(String, u64)> = self.folded.drain().collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (line, pages) in all.split_off(KEEP_STACKS / 2) {
            let comm = line.split(';').next().unwrap_or_default();
            *self
                .folded
                .entry(format!("{comm};{OTHER_STACKS}"))
                .or_default() += pages;
        }
        self.folded.extend(all);
    }

    /// Folded lines (`comm;frame;...;frame pages`), the most pages first.
    pub fn folded(&self) -> Vec<String> {
        let mut lines: Vec<(&String, &u64)> = self.folded.iter().collect();
        lines.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        lines
            .into_iter()
            .map(|(stack, pages)| format!("{stack} {pages}"))
            .collect()
    }

    /// Pages under each frame of the folded stacks: a frame counts once per stack.
    pub fn pages_under(&self, frame: &str) -> u64 {
        self.folded
            .iter()
            .filter(|(stack, _)| stack.split(';').any(|f| f == frame))
            .map(|(_, pages)| pages)
            .sum()
    }

    /// The innermost user frames with the most pages: (frame, comm, pages).
    pub fn top_leaves(&self, n: usize) -> Vec<(String, String, u64)> {
        let mut all: Vec<(String, String, u64)> = self
            .leaves
            .iter()
            .map(|((frame, comm), pages)| (frame.clone(), comm.clone(), *pages))
            .collect();
        all.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }

    /// The distinct stacks kept.
    pub fn stacks(&self) -> usize {
        self.folded.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::growth::StackSample;

    fn sample(comm: &str, frames: &[&str], user: u32, pages: u64) -> StackSample {
        StackSample {
            pid: 1,
            comm: comm.into(),
            frames: frames.iter().map(|f| f.to_string()).collect(),
            user_frames: user,
            pages,
        }
    }

    #[test]
    fn intervals_fold_into_lines_with_pages() {
        let mut log = StackLog::default();
        let interval = StacksInterval {
            enabled: true,
            stacks: vec![
                sample("leak", &["main", "grow", "do_anonymous_page"], 2, 100),
                sample("leak", &["main", "do_anonymous_page"], 1, 5),
                sample("leak", &[USER_UNAVAILABLE, "do_anonymous_page"], 1, 2),
            ],
            map_full: false,
        };
        log.apply(&interval);
        log.apply(&interval);
        assert_eq!(
            log.folded(),
            vec![
                "leak;main;grow;do_anonymous_page 200",
                "leak;main;do_anonymous_page 10",
                "leak;[user stack unavailable];do_anonymous_page 4",
            ]
        );
        assert_eq!(
            (log.pages, log.shallow_pages, log.unavailable_pages),
            (214, 10, 4)
        );
        assert_eq!(log.pages_under("grow"), 200);
        assert_eq!(log.pages_under("main"), 210);
        assert_eq!(
            log.top_leaves(2),
            vec![
                ("grow".into(), "leak".into(), 200),
                ("main".into(), "leak".into(), 10)
            ]
        );
    }

    #[test]
    fn past_the_cap_small_stacks_fold_and_still_count() {
        let mut log = StackLog::default();
        let stacks = (0..=KEEP_STACKS as u64)
            .map(|i| sample("a;b", &[&format!("f{i}")], 1, i + 1))
            .collect();
        log.apply(&StacksInterval {
            enabled: true,
            stacks,
            map_full: true,
        });
        assert!(log.stacks() <= KEEP_STACKS / 2 + 1);
        let total: u64 = (1..=KEEP_STACKS as u64 + 1).sum();
        let folded: u64 = log
            .folded()
            .iter()
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
            .sum();
        assert_eq!(folded, total);
        assert!(
            log.folded()
                .iter()
                .any(|l| l.starts_with("a:b;[other stacks] "))
        );
        assert!(log.map_full);
    }
}
