//! The WASI preview 1 functions adtap's filter imports (Rust's std start-up, `getrandom`, and
//! output through fd 1/2), implemented deterministically. Any other WASI import Envoy links traps
//! naming itself when called (`imports.rs`).
//!
//! - `random_get`: bytes from the host's seeded generator.
//! - `environ_*`: empty.
//! - `fd_write` to fd 1/2: captured as log lines, one per `\n`-terminated line (Envoy logs
//!   them at info/error); any other fd is BADF.
//! - `proc_exit`: a trap naming the exit code (Envoy treats it as a VM failure).

use crate::abi::{errno, Status};
use crate::guest::{read, u32_at, write, write_u32};
use crate::state::State;
use wasmtime::Caller;
use wasmtime::{format_err, Result};

type K<'a> = Caller<'a, State>;

/// The errno of a memory access: any bad guest pointer is EFAULT for WASI callers.
fn errno_of(r: std::result::Result<(), Status>) -> i32 {
    r.map_or(errno::FAULT, |()| errno::SUCCESS)
}

fn fd_write(c: &mut K, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> i32 {
    let mut out = Vec::new();
    for i in 0..iovs_len.max(0) {
        let Ok(iov) = read(c, iovs.wrapping_add(i * 8), 8) else {
            return errno::FAULT;
        };
        let (Some(ptr), Some(len)) = (u32_at(&iov, 0), u32_at(&iov, 4)) else {
            return errno::FAULT;
        };
        let Ok(bytes) = read(c, ptr as i32, len as i32) else {
            return errno::FAULT;
        };
        out.extend_from_slice(&bytes);
    }
    let to_stderr = match fd {
        1 => false,
        2 => true,
        _ => return errno::BADF,
    };
    let n = out.len() as u32;
    c.data_mut().write_stdio(to_stderr, &out);
    errno_of(write_u32(c, nwritten, n))
}

fn random_get(c: &mut K, ptr: i32, len: i32) -> i32 {
    let mut buf = vec![0u8; len as u32 as usize];
    c.data_mut().rng.fill(&mut buf);
    errno_of(write(c, ptr, &buf))
}

fn environ_sizes_get(c: &mut K, count_ptr: i32, size_ptr: i32) -> i32 {
    errno_of(write_u32(c, count_ptr, 0).and_then(|()| write_u32(c, size_ptr, 0)))
}

/// Ends the VM: Envoy treats a `proc_exit` as a failed VM.
fn proc_exit(_c: &mut K, code: i32) -> Result<()> {
    Err(format_err!("module called WASI proc_exit({code})"))
}

fn environ_get(_c: &mut K, _environ: i32, _buf: i32) -> i32 {
    errno::SUCCESS
}

crate::imports::import_table! { "wasi_snapshot_preview1";
    fd_write(fd: i32, iovs: i32, iovs_len: i32, nwritten: i32);
    random_get(ptr: i32, len: i32);
    environ_sizes_get(count: i32, size: i32);
    environ_get(environ: i32, buf: i32);
    proc_exit(code: i32);
}
