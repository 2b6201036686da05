//! Reading and writing guest linear memory from host functions, and the header-map wire format.
//!
//! Every pointer from the guest is bounds-checked: a bad pointer is answered with
//! `InvalidMemoryAccess` (as Envoy does), never a host panic. Data handed back to the guest is
//! copied into memory obtained from the module's own `proxy_on_memory_allocate`, because the
//! module frees it with its allocator (`Vec::from_raw_parts`).

use crate::abi::Status;
use crate::state::{Pairs, State};
use wasmtime::Caller;

/// Why a host function stops early: a status for the guest, or a trap.
pub(crate) enum HcErr {
    Status(Status),
    Trap(wasmtime::Error),
}

impl From<Status> for HcErr {
    fn from(s: Status) -> Self {
        HcErr::Status(s)
    }
}

impl From<wasmtime::Error> for HcErr {
    fn from(e: wasmtime::Error) -> Self {
        HcErr::Trap(e)
    }
}

pub(crate) type HcResult = Result<(), HcErr>;

/// Turns a host function's outcome into its i32 return value (or a trap).
pub(crate) fn finish(r: HcResult) -> wasmtime::Result<i32> {
    match r {
        Ok(()) => Ok(Status::Ok as i32),
        Err(HcErr::Status(s)) => Ok(s as i32),
        Err(HcErr::Trap(e)) => Err(e),
    }
}

fn range(ptr: i32, len: i32, mem_len: usize) -> Result<std::ops::Range<usize>, Status> {
    let start = ptr as u32 as usize;
    let end = start
        .checked_add(len as u32 as usize)
        .ok_or(Status::InvalidMemoryAccess)?;
    if end > mem_len {
        return Err(Status::InvalidMemoryAccess);
    }
    Ok(start..end)
}

/// Copies `len` bytes at `ptr` out of guest memory.
pub(crate) fn read(caller: &Caller<'_, State>, ptr: i32, len: i32) -> Result<Vec<u8>, Status> {
    let mem = caller.data().memory.ok_or(Status::InternalFailure)?;
    let data = mem.data(caller);
    let r = range(ptr, len, data.len())?;
    Ok(data.get(r).ok_or(Status::InvalidMemoryAccess)?.to_vec())
}

/// Writes `bytes` at `ptr` in guest memory.
pub(crate) fn write(caller: &mut Caller<'_, State>, ptr: i32, bytes: &[u8]) -> Result<(), Status> {
    let mem = caller.data().memory.ok_or(Status::InternalFailure)?;
    let data = mem.data_mut(&mut *caller);
    let r = range(ptr, bytes.len() as i32, data.len())?;
    data.get_mut(r)
        .ok_or(Status::InvalidMemoryAccess)?
        .copy_from_slice(bytes);
    Ok(())
}

pub(crate) fn write_u32(caller: &mut Caller<'_, State>, ptr: i32, v: u32) -> Result<(), Status> {
    write(caller, ptr, &v.to_le_bytes())
}

/// Copies `bytes` into freshly allocated guest memory and stores pointer and size at
/// `ret_ptr` / `ret_size`.
pub(crate) fn return_bytes(
    caller: &mut Caller<'_, State>,
    bytes: &[u8],
    ret_ptr: i32,
    ret_size: i32,
) -> HcResult {
    let alloc = caller
        .data()
        .allocate
        .clone()
        .ok_or(Status::InternalFailure)?;
    let len = i32::try_from(bytes.len()).map_err(|_| Status::InvalidMemoryAccess)?;
    let ptr = alloc.call(&mut *caller, len)?;
    if ptr == 0 && len > 0 {
        return Err(Status::InvalidMemoryAccess.into());
    }
    write(caller, ptr, bytes)?;
    write_u32(caller, ret_ptr, ptr as u32)?;
    write_u32(caller, ret_size, len as u32)?;
    Ok(())
}

/// Serializes a header map: u32 count, (u32 key_len, u32 value_len) per pair, then every key
/// and value followed by a NUL.
pub fn serialize_pairs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let size: usize = 4 + pairs
        .iter()
        .map(|(k, v)| 10 + k.len() + v.len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

/// The little-endian u32 at `at`, if `bytes` hold one there.
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b) as usize)
}

/// Parses the header-map wire format; `None` if it is malformed (Envoy: ParseFailure-like).
pub fn deserialize_pairs(bytes: &[u8]) -> Option<Pairs> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = u32_at(bytes, 0)?;
    let mut data_at = 4usize.checked_add(count.checked_mul(8)?)?;
    if data_at > bytes.len() {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let klen = u32_at(bytes, 4 + i * 8)?;
        let vlen = u32_at(bytes, 8 + i * 8)?;
        let key = bytes.get(data_at..data_at.checked_add(klen)?)?.to_vec();
        data_at = data_at.checked_add(klen + 1)?;
        let value = bytes.get(data_at..data_at.checked_add(vlen)?)?.to_vec();
        data_at = data_at.checked_add(vlen + 1)?;
        out.push((key, value));
    }
    Some(out)
}

/// Lossy `String` pairs, for records tests read.
pub(crate) fn lossy_pairs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

/// Splits a NUL-separated property path.
pub(crate) fn property_path(bytes: &[u8]) -> Vec<String> {
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}
