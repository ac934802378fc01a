//! A core of its own for the engine's thread (`[live] engine_core`).
//!
//! On a busy-polling engine, what is left of the tick-to-trade tail is other threads
//! taking its core: a preempted engine reads the next fill a scheduler slice late. Desks
//! give the hot thread a core and keep everything else off it; this does both inside the
//! process. The engine's thread is pinned to the core, and every other thread of the
//! process (those running now, and those the runtime starts afterwards) to the cores
//! the process may use but that one. The operating system's own threads are the
//! operator's to keep away (`isolcpus`, `nohz_full`): a process cannot.
//!
//! A thread inherits its creator's affinity, so a thread started from the engine's
//! thread after the pinning would share its core: the runtime's do not
//! ([`keep_off_engine_core`] at their start), and a program embedding the engine calls it
//! at the start of its own.

use thiserror::Error;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum AffinityError {
    #[error("[live] engine_core = {core}: this process may only run on cores {allowed}")]
    NotAllowed { core: usize, allowed: String },
    #[error("[live] engine_core = {core}: it is the only core this process may run on, and the engine needs it to itself while the other threads run elsewhere")]
    OnlyCore { core: usize },
    #[error("[live] engine_core: {0}")]
    System(String),
}

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::OnceLock;

    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    use nix::unistd::{gettid, Pid};

    use super::AffinityError;

    /// The cores every thread but the engine's runs on, once the engine is pinned.
    static OTHERS: OnceLock<CpuSet> = OnceLock::new();

    pub fn cores(set: &CpuSet) -> Vec<usize> {
        (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect()
    }

    fn current_set() -> Result<CpuSet, AffinityError> {
        sched_getaffinity(Pid::from_raw(0)).map_err(|e| AffinityError::System(format!("reading this thread's cores: {e}")))
    }

    pub fn allowed() -> Result<Vec<usize>, AffinityError> {
        current_set().map(|set| cores(&set))
    }

    pub fn pin_engine(core: usize) -> Result<(), AffinityError> {
        let allowed = current_set()?;
        if !allowed.is_set(core).unwrap_or(false) {
            let list = cores(&allowed).iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ");
            return Err(AffinityError::NotAllowed { core, allowed: list });
        }
        let mut others = allowed;
        others.unset(core).map_err(|e| AffinityError::System(e.to_string()))?;
        if cores(&others).is_empty() {
            return Err(AffinityError::OnlyCore { core });
        }
        let others = *OTHERS.get_or_init(|| others);
        // Every other thread of the process moves off the core. One that ended meanwhile
        // is no longer in the way: its error is no error.
        let me = gettid();
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for tid in tasks.flatten().filter_map(|t| t.file_name().to_str().and_then(|n| n.parse::<i32>().ok())) {
                if tid != me.as_raw() {
                    let _ = sched_setaffinity(Pid::from_raw(tid), &others);
                }
            }
        }
        let mut mine = CpuSet::new();
        mine.set(core).map_err(|e| AffinityError::System(e.to_string()))?;
        sched_setaffinity(Pid::from_raw(0), &mine).map_err(|e| AffinityError::System(format!("pinning the engine's thread to core {core}: {e}")))
    }

    pub fn keep_off_engine_core() {
        if let Some(others) = OTHERS.get() {
            if let Err(e) = sched_setaffinity(Pid::from_raw(0), others) {
                tracing::warn!("a thread could not move off the engine's core: {e}");
            }
        }
    }

    pub fn off_engine_core<T>(f: impl FnOnce() -> T) -> T {
        let Some(others) = OTHERS.get() else { return f() };
        let Ok(mine) = current_set() else { return f() };
        let _ = sched_setaffinity(Pid::from_raw(0), others);
        let made = f();
        if let Err(e) = sched_setaffinity(Pid::from_raw(0), &mine) {
            tracing::warn!("a thread could not go back to its cores: {e}");
        }
        made
    }
}

/// Pins the calling thread, the engine's, to `core`, and every other thread of the
/// process to the other cores it may use. Refused, with nothing changed, when the
/// process may not use `core` or may use nothing else.
pub fn pin_engine(core: usize) -> Result<(), AffinityError> {
    #[cfg(target_os = "linux")]
    return linux::pin_engine(core);
    #[cfg(not(target_os = "linux"))]
    return Err(AffinityError::System(format!("pinning to core {core} is supported on Linux only")));
}

/// Moves the calling thread off the engine's core, if the engine was pinned to one: at
/// the start of a thread started after the pinning, which would otherwise share it.
pub fn keep_off_engine_core() {
    #[cfg(target_os = "linux")]
    linux::keep_off_engine_core();
}

/// Runs `f` with the calling thread off the engine's core, and puts it back: the threads
/// `f` starts (a library's, whose start the runtime cannot reach) inherit the other cores.
pub fn off_engine_core<T>(f: impl FnOnce() -> T) -> T {
    #[cfg(target_os = "linux")]
    return linux::off_engine_core(f);
    #[cfg(not(target_os = "linux"))]
    return f();
}

/// The cores the calling thread may run on (empty where that cannot be told).
pub fn allowed_cores() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    return linux::allowed().unwrap_or_default();
    #[cfg(not(target_os = "linux"))]
    return Vec::new();
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A core the process may not use is refused by name, with the ones it may, and
    /// nothing moves.
    #[test]
    fn a_core_the_process_may_not_use_is_refused_and_nothing_moves() {
        let before = allowed_cores();
        let beyond = nix::sched::CpuSet::count() - 1;
        let refused = pin_engine(beyond);
        let message = refused.clone().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(matches!(refused, Err(AffinityError::NotAllowed { core, .. }) if core == beyond), "{message}");
        assert!(message.contains(&format!("engine_core = {beyond}")) && message.contains(&before.first().copied().unwrap_or_default().to_string()), "{message}");
        assert_eq!(allowed_cores(), before);
    }
}
