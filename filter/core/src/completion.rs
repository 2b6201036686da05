//! The response-time fields of an event (status, duration, sizes, route, upstream, peer
//! address), read in `on_log` in **one** host call instead of one per field.
//!
//! Each `proxy_get_property` that returns data costs about a microsecond in Envoy's V8 (the call
//! out, Envoy calling back into the module's allocator, the copy): with every field configured
//! that was seven calls per event, more than everything else adtap does per event. Envoy also
//! offers CEL evaluation to Wasm modules through the foreign functions `expr_create` (compile
//! once, in `on_configure`) and `expr_evaluate` (per stream). One CEL list of the configured
//! properties gives them all in a single call; Envoy serialises a list like a header map
//! (count, sizes, NUL-terminated items), each item as `get_property` would give it: integers
//! and durations as 8 little-endian bytes (durations in nanoseconds), strings as their bytes.
//!
//! An absent property would make the whole expression fail, so each item is guarded with
//! `has()` and falls back to a sentinel (`-1`, a negative duration, `""`) that [`decode`] reads
//! as absent. The glue falls back to one `get_property` per field when the host has no CEL (the
//! test host, other proxies) or an evaluation fails, so the result is the same either way.

use crate::capture::Completion;
use crate::config::ResponseFields;

/// The properties an expression reads, in item order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The configured response fields.
    pub fields: ResponseFields,
    /// Whether the peer address is read too (the client-IP mode may use it).
    pub peer: bool,
}

/// One item of the list: which property, how it is typed, and its absent-value sentinel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Status,
    Duration,
    RequestBytes,
    ResponseBytes,
    Route,
    Upstream,
    Peer,
}

impl Item {
    /// The CEL for this item: the property if present, else the sentinel.
    fn cel(self) -> &'static str {
        match self {
            Item::Status => "has(response.code) ? response.code : -1",
            Item::Duration => "has(request.duration) ? request.duration : duration('-1s')",
            Item::RequestBytes => "has(request.total_size) ? request.total_size : -1",
            Item::ResponseBytes => "has(response.total_size) ? response.total_size : -1",
            Item::Route => "has(xds.route_name) ? xds.route_name : ''",
            Item::Upstream => "has(xds.cluster_name) ? xds.cluster_name : ''",
            Item::Peer => "has(source.address) ? source.address : ''",
        }
    }
}

impl Plan {
    /// The items read, in order.
    fn items(self) -> impl Iterator<Item = Item> {
        let f = self.fields;
        [
            (f.status, Item::Status),
            (f.duration, Item::Duration),
            (f.sizes, Item::RequestBytes),
            (f.sizes, Item::ResponseBytes),
            (f.route, Item::Route),
            (f.upstream, Item::Upstream),
            (self.peer, Item::Peer),
        ]
        .into_iter()
        .filter_map(|(on, item)| on.then_some(item))
    }

    /// The CEL list expression reading every planned property, or `None` when nothing is read.
    pub fn expression(self) -> Option<String> {
        let items: Vec<String> = self.items().map(|i| format!("({})", i.cel())).collect();
        (!items.is_empty()).then(|| format!("[{}]", items.join(", ")))
    }

    /// The fields from the evaluated list's items, in order. `None` when the items do not fit
    /// the plan (their number, or an integer that is not 8 bytes): the glue then reads the
    /// properties one by one. `peer_wanted` says whether this event uses the peer address.
    pub fn decode<'a>(
        self,
        values: impl ExactSizeIterator<Item = &'a [u8]>,
        peer_wanted: bool,
    ) -> Option<Completion> {
        if values.len() != self.items().count() {
            return None;
        }
        let mut done = Completion::default();
        for (item, bytes) in self.items().zip(values) {
            match item {
                Item::Status => done.status = int(bytes)?.and_then(|c| u16::try_from(c).ok()),
                Item::Duration => done.duration_us = int(bytes)?.map(|ns| ns / 1_000),
                Item::RequestBytes => done.request_bytes = int(bytes)?,
                Item::ResponseBytes => done.response_bytes = int(bytes)?,
                Item::Route => done.route = text(bytes),
                Item::Upstream => done.upstream = text(bytes),
                Item::Peer => done.peer_address = text(bytes).filter(|_| peer_wanted),
            }
        }
        Some(done)
    }
}

/// An 8-byte little-endian integer; a negative one is the absent sentinel (`Some(None)`).
/// `None` when the bytes are not an integer.
fn int(bytes: &[u8]) -> Option<Option<u64>> {
    let arr: [u8; 8] = bytes.try_into().ok()?;
    Some(u64::try_from(i64::from_le_bytes(arr)).ok())
}

/// A string property; empty is absent. Invalid UTF-8 is replaced rather than refused.
fn text(bytes: &[u8]) -> Option<String> {
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn all(peer: bool) -> Plan {
        Plan {
            fields: ResponseFields::default(),
            peer,
        }
    }

    fn i64le(v: i64) -> Vec<u8> {
        v.to_le_bytes().to_vec()
    }

    #[test]
    fn expression_lists_the_configured_properties_in_order() {
        let e = all(true).expression().unwrap();
        let at = |s: &str| e.find(s).unwrap();
        assert!(
            e.starts_with("[(has(response.code)") && e.ends_with(": '')]"),
            "{e}"
        );
        assert!(at("response.code") < at("request.duration"));
        assert!(at("request.duration") < at("request.total_size"));
        assert!(at("request.total_size") < at("response.total_size"));
        assert!(at("response.total_size") < at("xds.route_name"));
        assert!(at("xds.route_name") < at("xds.cluster_name"));
        assert!(at("xds.cluster_name") < at("source.address"));
        assert!(!all(false).expression().unwrap().contains("source.address"));

        let lean = Plan {
            fields: ResponseFields::from_list(&[crate::config::ResponseField::Status]),
            peer: false,
        };
        assert_eq!(
            lean.expression().unwrap(),
            "[(has(response.code) ? response.code : -1)]"
        );
        let nothing = Plan {
            fields: ResponseFields::from_list(&[]),
            peer: false,
        };
        assert_eq!(nothing.expression(), None);
    }

    #[test]
    fn decodes_values_and_sentinels() {
        let items = [
            i64le(204),
            i64le(1_500_000), // 1.5 ms in ns
            i64le(321),
            i64le(-1), // absent
            b"imp-route".to_vec(),
            Vec::new(), // absent
            b"10.0.0.7:5555".to_vec(),
        ];
        let done = all(true)
            .decode(items.iter().map(Vec::as_slice), true)
            .unwrap();
        assert_eq!(done.status, Some(204));
        assert_eq!(done.duration_us, Some(1_500));
        assert_eq!((done.request_bytes, done.response_bytes), (Some(321), None));
        assert_eq!(done.route.as_deref(), Some("imp-route"));
        assert_eq!(done.upstream, None);
        assert_eq!(done.peer_address.as_deref(), Some("10.0.0.7:5555"));

        // The peer is read by the plan but not wanted by this event.
        let done = all(true)
            .decode(items.iter().map(Vec::as_slice), false)
            .unwrap();
        assert_eq!(done.peer_address, None);
        // A negative duration is the absent sentinel.
        let mut neg = items.clone();
        neg[1] = i64le(-1_000_000_000);
        let done = all(true)
            .decode(neg.iter().map(Vec::as_slice), true)
            .unwrap();
        assert_eq!(done.duration_us, None);
    }

    #[test]
    fn items_that_do_not_fit_the_plan_are_refused() {
        let items = [i64le(200)];
        assert!(all(false)
            .decode(items.iter().map(Vec::as_slice), false)
            .is_none());
        let mut wrong = [
            i64le(200),
            i64le(1),
            i64le(1),
            i64le(1),
            b"r".to_vec(),
            b"u".to_vec(),
        ];
        assert!(all(false)
            .decode(wrong.iter().map(Vec::as_slice), false)
            .is_some());
        wrong[0] = b"200".to_vec(); // a status that is not 8 bytes
        assert!(all(false)
            .decode(wrong.iter().map(Vec::as_slice), false)
            .is_none());
    }
}
