//! Splits a byte stream into lines without ever holding more than the line
//! limit in memory: an over-long line is reported with a prefix, not read.

use std::io::{BufRead, ErrorKind};

pub enum Line<'a> {
    Complete(&'a [u8]),
    /// Longer than the limit: the first bytes and the full length.
    TooLong {
        prefix: &'a [u8],
        length: usize,
    },
}

/// How much of an over-long line is kept for the rejects table.
pub const KEPT_PREFIX: usize = 4096;

/// Calls `on_line(line_number, line)` for every line (1-based). Lines end at
/// `\n`; a trailing `\r` is dropped; a last line without `\n` counts. An I/O
/// error (a corrupt gzip stream, say) stops the walk and is returned with the
/// number of lines read before it.
pub fn for_each_line(mut reader: impl BufRead, max_len: usize, mut on_line: impl FnMut(u64, Line<'_>)) -> Result<u64, (u64, std::io::Error)> {
    let mut line_number = 0u64;
    let mut pending: Vec<u8> = Vec::new();
    let mut pending_len = 0usize;
    loop {
        let available = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err((line_number, e)),
        };
        if available.is_empty() {
            if pending_len > 0 {
                line_number += 1;
                emit(&pending, pending_len, max_len, line_number, &mut on_line);
            }
            return Ok(line_number);
        }
        match memchr::memchr(b'\n', available) {
            Some(end) => {
                line_number += 1;
                if pending_len == 0 {
                    emit(&available[..end], end, max_len, line_number, &mut on_line);
                } else {
                    keep(&mut pending, &available[..end], max_len);
                    emit(&pending, pending_len + end, max_len, line_number, &mut on_line);
                    pending.clear();
                    pending_len = 0;
                }
                reader.consume(end + 1);
            }
            None => {
                let n = available.len();
                keep(&mut pending, available, max_len);
                pending_len += n;
                reader.consume(n);
            }
        }
    }
}

fn keep(pending: &mut Vec<u8>, chunk: &[u8], max_len: usize) {
    let room = (max_len + 1).saturating_sub(pending.len());
    pending.extend_from_slice(&chunk[..chunk.len().min(room)]);
}

fn emit(bytes: &[u8], length: usize, max_len: usize, line_number: u64, on_line: &mut impl FnMut(u64, Line<'_>)) {
    let (bytes, length) = match bytes.last() {
        Some(b'\r') if length <= max_len + 1 => (&bytes[..bytes.len() - 1], length - 1),
        _ => (bytes, length),
    };
    if length > max_len {
        on_line(line_number, Line::TooLong { prefix: &bytes[..bytes.len().min(KEPT_PREFIX).min(max_len)], length });
    } else {
        on_line(line_number, Line::Complete(bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], max: usize, buffer: usize) -> Vec<(u64, String, Option<usize>)> {
        let mut out = Vec::new();
        let reader = std::io::BufReader::with_capacity(buffer, input);
        for_each_line(reader, max, |n, line| match line {
            Line::Complete(b) => out.push((n, String::from_utf8_lossy(b).into_owned(), None)),
            Line::TooLong { prefix, length } => out.push((n, String::from_utf8_lossy(prefix).into_owned(), Some(length))),
        })
        .unwrap();
        out
    }

    #[test]
    fn splits_lines_across_small_buffers() {
        for buffer in [1, 2, 3, 7, 64] {
            let lines = collect(b"ab\r\ncde\n\nlast", 100, buffer);
            let texts: Vec<&str> = lines.iter().map(|(_, s, _)| s.as_str()).collect();
            assert_eq!(texts, ["ab", "cde", "", "last"], "buffer {buffer}");
            assert_eq!(lines[3].0, 4);
        }
    }

    #[test]
    fn long_lines_are_flagged_with_their_length_and_the_next_line_survives() {
        let mut input = vec![b'x'; 50];
        input.extend_from_slice(b"\nok\n");
        for buffer in [4, 16, 128] {
            let lines = collect(&input, 10, buffer);
            assert_eq!(lines[0].2, Some(50), "buffer {buffer}");
            assert_eq!(lines[0].1.len(), 10, "the kept prefix is at most the limit");
            assert_eq!((lines[1].0, lines[1].1.as_str(), lines[1].2), (2, "ok", None));
        }
    }
}
