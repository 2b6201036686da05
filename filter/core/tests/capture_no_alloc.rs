//! `capture::match_rule` runs on every request through Envoy, so it must not allocate. This
//! binary installs a counting global allocator and holds the only test in it, so nothing else
//! allocates concurrently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use adtap_core::capture::{match_rule, RequestHead};
use adtap_core::config::Config;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: as for `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn match_rule_does_not_allocate() {
    let cfg = Config::parse(
        br#"{"cluster": "k", "rules": [
            {"event_type": "a", "topic": "t", "method": "GET", "path": {"exact": "/i"}, "host": "ads.example.com"},
            {"event_type": "b", "topic": "t", "path": {"prefix": "/c/"}, "host": "[2001:db8::1]"},
            {"event_type": "c", "topic": "t", "method": "POST", "path": {"prefix": "/bid"}}
        ]}"#,
    )
    .unwrap();
    let long_query = format!("/nomatch?{}", "x=1&".repeat(10_000));
    let heads = [
        ("GET", "ADS.example.com:8443", "/i?cid=1", Some(0)),
        ("GET", "[2001:db8::1]:443", "/c/x?y", Some(1)),
        ("POST", "anything", "/bidder", Some(2)),
        ("GET", "other", "/i", None),
        ("PUT", "ads.example.com", long_query.as_str(), None),
    ];
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let mut got = [None; 5];
    for _ in 0..100 {
        for (slot, (method, host, path, _)) in got.iter_mut().zip(heads.iter()) {
            *slot = match_rule(&cfg, RequestHead { method, host, path });
        }
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(after - before, 0, "match_rule allocated");
    let want: Vec<Option<usize>> = heads.iter().map(|h| h.3).collect();
    assert_eq!(got.to_vec(), want);
}
