//! The WASI preview 1 functions Envoy links, implemented deterministically.
//!
//! - `random_get`: bytes from the host's seeded generator.
//! - `clock_time_get`: realtime = the test clock's wall time, monotonic (and CPU clocks) =
//!   elapsed test time; never the machine's clock.
//! - `environ_*`, `args_*`: empty.
//! - `fd_write` to fd 1/2: captured as log lines, one per `\n`-terminated line (Envoy logs
//!   them at info/error).
//! - `proc_exit`: a trap naming the exit code (Envoy treats it as a VM failure).
//! - the rest: the restricted stubs' errno (BADF for the preopen scan, NOSYS otherwise).

use crate::abi::errno;
use crate::guest::{read, write, write_u32, write_u64};
use crate::state::State;
use wasmtime::{format_err, Result};
use wasmtime::{Caller, Linker};

const W: &str = "wasi_snapshot_preview1";
type K<'a> = Caller<'a, State>;

/// Any bad guest pointer is EFAULT for WASI callers.
fn err(_bad_pointer: crate::abi::Status) -> i32 {
    errno::FAULT
}

fn le_i32(bytes: &[u8], at: usize) -> i32 {
    let b: [u8; 4] = bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; 4]);
    i32::from_le_bytes(b)
}

fn fd_write(c: &mut K, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> i32 {
    let mut out = Vec::new();
    for i in 0..iovs_len.max(0) {
        let Ok(iov) = read(c, iovs.wrapping_add(i * 8), 8) else {
            return errno::FAULT;
        };
        let (ptr, len) = (le_i32(&iov, 0), le_i32(&iov, 4));
        match read(c, ptr, len) {
            Ok(bytes) => out.extend_from_slice(&bytes),
            Err(e) => return err(e),
        }
    }
    let to_stderr = match fd {
        1 => false,
        2 => true,
        _ => return errno::BADF,
    };
    let n = out.len() as u32;
    c.data_mut().write_stdio(to_stderr, &out);
    match write_u32(c, nwritten, n) {
        Ok(()) => errno::SUCCESS,
        Err(e) => err(e),
    }
}

fn clock_time_get(c: &mut K, id: i32, _precision: i64, ret: i32) -> i32 {
    let st = c.data();
    let t = match id {
        0 => st.now_ns(),
        1..=3 => st.monotonic_ns(),
        _ => return errno::INVAL,
    };
    match write_u64(c, ret, t) {
        Ok(()) => errno::SUCCESS,
        Err(e) => err(e),
    }
}

fn random_get(c: &mut K, ptr: i32, len: i32) -> i32 {
    let mut buf = vec![0u8; len as u32 as usize];
    c.data_mut().rng.fill(&mut buf);
    match write(c, ptr, &buf) {
        Ok(()) => errno::SUCCESS,
        Err(e) => err(e),
    }
}

fn zero_sizes(c: &mut K, count_ptr: i32, size_ptr: i32) -> i32 {
    match write_u32(c, count_ptr, 0).and_then(|()| write_u32(c, size_ptr, 0)) {
        Ok(()) => errno::SUCCESS,
        Err(e) => err(e),
    }
}

fn fd_fdstat_get(c: &mut K, fd: i32, ret: i32) -> i32 {
    if !(0..=2).contains(&fd) {
        return errno::BADF;
    }
    // fdstat: filetype u8 (2 = character device), flags u16, rights base/inheriting u64.
    let mut stat = [0u8; 24];
    stat[0] = 2;
    stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    match write(c, ret, &stat) {
        Ok(()) => errno::SUCCESS,
        Err(e) => err(e),
    }
}

/// Registers the WASI functions on `linker`.
pub(crate) fn link(l: &mut Linker<State>) -> Result<()> {
    l.func_wrap(W, "fd_write", |mut c: K, a: i32, b: i32, d: i32, e: i32| {
        fd_write(&mut c, a, b, d, e)
    })?;
    l.func_wrap(W, "clock_time_get", |mut c: K, a: i32, b: i64, d: i32| {
        clock_time_get(&mut c, a, b, d)
    })?;
    l.func_wrap(W, "random_get", |mut c: K, a: i32, b: i32| {
        random_get(&mut c, a, b)
    })?;
    l.func_wrap(W, "environ_sizes_get", |mut c: K, a: i32, b: i32| {
        zero_sizes(&mut c, a, b)
    })?;
    l.func_wrap(W, "args_sizes_get", |mut c: K, a: i32, b: i32| {
        zero_sizes(&mut c, a, b)
    })?;
    l.func_wrap(W, "environ_get", |_c: K, _a: i32, _b: i32| errno::SUCCESS)?;
    l.func_wrap(W, "args_get", |_c: K, _a: i32, _b: i32| errno::SUCCESS)?;
    l.func_wrap(W, "fd_fdstat_get", |mut c: K, a: i32, b: i32| {
        fd_fdstat_get(&mut c, a, b)
    })?;
    l.func_wrap(W, "proc_exit", |_c: K, code: i32| -> Result<()> {
        Err(format_err!("module called WASI proc_exit({code})"))
    })?;
    l.func_wrap(W, "fd_read", |_c: K, _a: i32, _b: i32, _d: i32, _e: i32| {
        errno::NOSYS
    })?;
    l.func_wrap(W, "fd_seek", |_c: K, _a: i32, _b: i64, _d: i32, _e: i32| {
        errno::NOSYS
    })?;
    l.func_wrap(W, "fd_close", |_c: K, _a: i32| errno::NOSYS)?;
    l.func_wrap(W, "fd_prestat_get", |_c: K, _a: i32, _b: i32| errno::BADF)?;
    l.func_wrap(
        W,
        "fd_prestat_dir_name",
        |_c: K, _a: i32, _b: i32, _d: i32| errno::NOSYS,
    )?;
    l.func_wrap(
        W,
        "path_open",
        |_c: K, _a: i32, _b: i32, _d: i32, _e: i32, _f: i32, _g: i64, _h: i64, _i: i32, _j: i32| {
            errno::NOSYS
        },
    )?;
    Ok(())
}
