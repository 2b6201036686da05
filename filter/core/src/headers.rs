//! Header maps in the proxy-wasm serialisation, read in place.
//!
//! Envoy hands a whole header map over in one host call (`proxy_get_header_map_pairs`): a
//! `u32` count, then a `u32` key length and a `u32` value length per header, then each key and
//! value followed by a NUL. One call for every header a capture needs is cheaper than one call
//! per header (each costs about a microsecond in V8), so the capture reads the map once and
//! looks names up in these bytes without copying them.

/// A parsed header map, borrowed lookups into the host's bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderPairs {
    data: Vec<u8>,
    count: usize,
}

impl HeaderPairs {
    /// Checks the serialisation once, so that lookups can walk it without failing later.
    /// `None` if it is malformed.
    pub fn parse(data: Vec<u8>) -> Option<HeaderPairs> {
        let map = HeaderPairs {
            count: read_u32(&data, 0)? as usize,
            data,
        };
        (map.iter().count() == map.count).then_some(map)
    }

    /// A map of `pairs` (tests, the JavaScript preview, the native drivers).
    pub fn from_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> HeaderPairs {
        HeaderPairs {
            data: serialize(pairs),
            count: pairs.len(),
        }
    }

    /// Every (name, value), in the host's order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let sizes_start = 4usize;
        let mut data_at = sizes_start.saturating_add(self.count.saturating_mul(8));
        (0..self.count).map_while(move |i| {
            let at = sizes_start.checked_add(i.checked_mul(8)?)?;
            let k = read_u32(&self.data, at)? as usize;
            let v = read_u32(&self.data, at.checked_add(4)?)? as usize;
            let key = self.data.get(data_at..data_at.checked_add(k)?)?;
            let v_start = data_at.checked_add(k)?.checked_add(1)?;
            let value = self.data.get(v_start..v_start.checked_add(v)?)?;
            data_at = v_start.checked_add(v)?.checked_add(1)?;
            Some((key, value))
        })
    }

    /// The first value of header `name` (ASCII case-insensitive).
    ///
    /// A capture makes about a dozen lookups per request, so this walks the sizes table with
    /// plain arithmetic and compares a key's bytes only when its length matches (the map was
    /// checked whole by [`HeaderPairs::parse`], so `get` cannot fail midway).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let name = name.as_bytes();
        let mut data_at = 4usize.saturating_add(self.count.saturating_mul(8));
        for i in 0..self.count {
            let at = 4 + i * 8;
            let k = read_u32(&self.data, at)? as usize;
            let v = read_u32(&self.data, at + 4)? as usize;
            let v_start = data_at + k + 1;
            if k == name.len()
                && self
                    .data
                    .get(data_at..data_at + k)?
                    .eq_ignore_ascii_case(name)
            {
                return self.data.get(v_start..v_start + v);
            }
            data_at = v_start + v + 1;
        }
        None
    }

    /// The first value of `name` as text (invalid UTF-8 replaced, borrowed when valid).
    pub fn text(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.get(name).map(|v| match std::str::from_utf8(v) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(v),
        })
    }
}

/// Serialises header pairs for the ABI (the headers of a dispatched call).
pub fn serialize<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let size: usize = 4 + pairs
        .iter()
        .map(|(k, v)| 10 + k.as_ref().len() + v.as_ref().len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len(pairs.len()));
    for (k, v) in pairs {
        out.extend_from_slice(&len(k.as_ref().len()));
        out.extend_from_slice(&len(v.as_ref().len()));
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_case_insensitive_lookup() {
        let map = HeaderPairs::from_pairs(&[(":path", "/i?x=1"), ("User-Agent", "ua"), ("a", "")]);
        let parsed = HeaderPairs::parse(map.data.clone()).unwrap();
        assert_eq!(parsed, map);
        assert_eq!(parsed.get(":path"), Some(&b"/i?x=1"[..]));
        assert_eq!(parsed.get("user-agent"), Some(&b"ua"[..]));
        assert_eq!(parsed.get("a"), Some(&b""[..]));
        assert_eq!(parsed.get("missing"), None);
        assert_eq!(parsed.iter().count(), 3);
    }

    #[test]
    fn malformed_maps_are_refused() {
        assert!(HeaderPairs::parse(Vec::new()).is_none());
        // Count says 2, one pair present.
        let mut one = serialize(&[("k", "v")]);
        one[0] = 2;
        assert!(HeaderPairs::parse(one).is_none());
        // Lengths pointing past the end.
        let mut long = serialize(&[("k", "v")]);
        long[4] = 200;
        assert!(HeaderPairs::parse(long).is_none());
        assert_eq!(
            HeaderPairs::parse(serialize::<&str, &str>(&[]))
                .unwrap()
                .iter()
                .count(),
            0
        );
    }
}
