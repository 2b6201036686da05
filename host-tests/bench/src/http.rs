//! The response reader of the fixed-rate load generator's keep-alive connections (control
//! calls go through the harness's client, [`adtap_harness::http`]). Responses are read by
//! `content-length` (Envoy's `direct_response` always sends one), chunks, or until close.

use anyhow::{anyhow, bail, Result};
use std::io::Read;

/// Reads responses off one connection, keeping bytes that arrived past a response.
#[derive(Debug, Default)]
pub struct ResponseReader {
    buf: Vec<u8>,
}

impl ResponseReader {
    /// Reads one whole response: its status and body.
    pub fn read(&mut self, conn: &mut impl Read) -> Result<(u16, Vec<u8>)> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill(conn)?;
        };
        let head = std::str::from_utf8(self.buf.get(..head_end).unwrap_or_default())
            .map_err(|_| anyhow!("response head is not UTF-8"))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| anyhow!("bad status line"))?;
        let length = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        });
        let chunked = head.lines().any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("transfer-encoding")
                    && v.to_ascii_lowercase().contains("chunked")
            })
        });
        if chunked {
            self.buf.drain(..head_end);
            let body = self.read_chunks(conn)?;
            return Ok((status, body));
        }
        match length {
            Some(n) => {
                while self.buf.len() < head_end + n {
                    self.fill(conn)?;
                }
                let body = self
                    .buf
                    .get(head_end..head_end + n)
                    .unwrap_or_default()
                    .to_vec();
                self.buf.drain(..head_end + n);
                Ok((status, body))
            }
            None => {
                // No length: the body runs to the end of the connection.
                while self.fill(conn).is_ok() {}
                let body = self.buf.get(head_end..).unwrap_or_default().to_vec();
                self.buf.clear();
                Ok((status, body))
            }
        }
    }

    /// Reads a chunked body (`size CRLF data CRLF … 0 CRLF CRLF`; no trailers expected).
    fn read_chunks(&mut self, conn: &mut impl Read) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf, b"\r\n") {
                    break i;
                }
                self.fill(conn)?;
            };
            let line = std::str::from_utf8(self.buf.get(..line_end).unwrap_or_default())
                .map_err(|_| anyhow!("bad chunk size line"))?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| anyhow!("bad chunk size `{size_text}`"))?;
            // The chunk, then its CRLF (the last chunk is followed by an empty line).
            let need = line_end + 2 + size + 2;
            while self.buf.len() < need {
                self.fill(conn)?;
            }
            body.extend_from_slice(
                self.buf
                    .get(line_end + 2..line_end + 2 + size)
                    .unwrap_or_default(),
            );
            self.buf.drain(..need);
            if size == 0 {
                return Ok(body);
            }
        }
    }

    fn fill(&mut self, conn: &mut impl Read) -> Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed");
        }
        self.buf
            .extend_from_slice(chunk.get(..n).unwrap_or_default());
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pipelined_responses_split_anywhere() {
        let wire = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n";
        // A reader that hands out 3 bytes at a time, so heads and bodies arrive split.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(3).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut conn = Trickle(wire);
        let mut r = ResponseReader::default();
        assert_eq!(r.read(&mut conn).unwrap(), (200, b"ok".to_vec()));
        assert_eq!(r.read(&mut conn).unwrap(), (503, Vec::new()));
        assert!(r.read(&mut conn).is_err());
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let mut conn: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\nb;x=1\r\n: 12345678}\r\n0\r\n\r\nHTTP/1.1 204 No\r\ncontent-length: 0\r\n\r\n";
        let mut r = ResponseReader::default();
        assert_eq!(
            r.read(&mut conn).unwrap(),
            (200, b"{\"a\": 12345678}".to_vec())
        );
        assert_eq!(r.read(&mut conn).unwrap(), (204, Vec::new()));
    }

    #[test]
    fn body_without_length_runs_to_close() {
        let mut conn: &[u8] = b"HTTP/1.1 200 OK\r\n\r\nall of it";
        let mut r = ResponseReader::default();
        assert_eq!(r.read(&mut conn).unwrap(), (200, b"all of it".to_vec()));
    }
}
