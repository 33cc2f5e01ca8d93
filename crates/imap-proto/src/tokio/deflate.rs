//! Raw DEFLATE (RFC 1951) both ways for `COMPRESS DEFLATE` (RFC 4978).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::Error;

/// A compressor/decompressor pair for one connection.
pub(crate) struct Deflate {
    comp: Compress,
    decomp: Decompress,
}

impl std::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deflate")
    }
}

impl Deflate {
    pub(crate) fn new() -> Self {
        Self {
            comp: Compress::new(Compression::default(), false),
            decomp: Decompress::new(false),
        }
    }

    /// Compresses `data` and sync-flushes, so the peer can decode everything written so far.
    pub(crate) fn compress(&mut self, data: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(4096);
            }
            let before_in = self.comp.total_in();
            self.comp
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| Error::Compression(e.to_string()))?;
            let used = usize::try_from(self.comp.total_in() - before_in).unwrap_or(input.len());
            input = input.get(used..).unwrap_or_default();
            // Done when all input is consumed and the flush left spare room in the buffer.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }

    /// Decompresses `data` (any amount), returning the plain bytes.
    pub(crate) fn decompress(&mut self, data: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(data.len() * 4 + 64);
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(16 * 1024);
            }
            let before_in = self.decomp.total_in();
            let status = self
                .decomp
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
                .map_err(|e| Error::Compression(e.to_string()))?;
            let used = usize::try_from(self.decomp.total_in() - before_in).unwrap_or(input.len());
            input = input.get(used..).unwrap_or_default();
            if matches!(status, Status::StreamEnd)
                || (input.is_empty() && out.len() < out.capacity())
            {
                return Ok(out);
            }
            if out.len() > 64 * 1024 * 1024 {
                return Err(Error::Compression("decompressed data too large".into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut a = Deflate::new();
        let mut b = Deflate::new();
        let data = b"a1 NOOP\r\n".repeat(1000);
        let c = a.compress(&data).unwrap();
        assert!(c.len() < data.len());
        let mut got = Vec::new();
        for piece in c.chunks(7) {
            got.extend(b.decompress(piece).unwrap());
        }
        assert_eq!(got, data);
        let c2 = a.compress(b"x").unwrap();
        assert_eq!(b.decompress(&c2).unwrap(), b"x");
    }
}
