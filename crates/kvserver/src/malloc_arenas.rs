//! glibc malloc's arenas under a memory bound.
//!
//! glibc gives each thread that meets a busy arena one of its own (up to 8
//! per core), and free space in one arena is not reused by another. Under
//! `--eviction evict-lru`, where every write frees records of other sizes
//! and allocates one, the free lists of several arenas fragment and the
//! process held 1.14-1.15 times `--max-memory` (README, "Memory bound";
//! BENCHMARKS.md, "Memory bound"). With one arena it holds 1.07 times.
//! So a bounded kvserver asks glibc for one arena before it starts any
//! thread, unless the operator chose a number (`MALLOC_ARENA_MAX`, or
//! `glibc.malloc.arena_max` in `GLIBC_TUNABLES`). An unbounded server keeps
//! glibc's default: it makes no promise on its memory.
//!
//! The only unsafe code in the workspace is the one `mallopt` call below.

/// How many arenas a bounded server asks for: two still held 1.13 times
/// the bound (BENCHMARKS.md, "Memory bound").
pub const BOUNDED_ARENAS: i32 = 1;

/// What [`limit_for_bound`] did, for the start-up log.
#[derive(Debug, PartialEq, Eq)]
pub enum Arenas {
    /// No memory bound: glibc's default, one arena per thread that needs one.
    Default,
    /// The operator's environment sets the number; left to glibc.
    Operator,
    /// glibc was asked for this many arenas and took it.
    Limited(i32),
    /// Not glibc (or glibc refused): the allocator's own behaviour.
    Unsupported,
}

impl Arenas {
    /// The start-up log line's text.
    pub fn describe(&self) -> String {
        match self {
            Arenas::Default => "glibc default (no memory bound)".to_owned(),
            Arenas::Operator => "set by MALLOC_ARENA_MAX or GLIBC_TUNABLES".to_owned(),
            Arenas::Limited(arenas) => format!("{arenas} (memory bound set)"),
            Arenas::Unsupported => "not limited (not glibc)".to_owned(),
        }
    }
}

/// Limits glibc's malloc arenas to [`BOUNDED_ARENAS`] when a memory bound
/// is set and the environment does not choose. Call it before any thread
/// is started: an arena that exists is not given back.
pub fn limit_for_bound(bounded: bool) -> Arenas {
    if !bounded {
        return Arenas::Default;
    }
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() || tunables.contains("glibc.malloc.arena_max")
    {
        return Arenas::Operator;
    }
    if set_arena_max(BOUNDED_ARENAS) {
        Arenas::Limited(BOUNDED_ARENAS)
    } else {
        Arenas::Unsupported
    }
}

/// `mallopt(M_ARENA_MAX, arenas)`; true when glibc accepted it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_arena_max(arenas: i32) -> bool {
    // SAFETY: mallopt takes two integers and only sets a malloc parameter
    // under malloc's own lock; no pointer crosses the boundary.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: i32) -> bool {
    false
}
