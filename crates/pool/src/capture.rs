//! The output of the invocation running on a lambda instance, kept so the
//! Invoke API can return its tail (`X-Amz-Log-Result`, the last 4 KB).

use std::sync::Mutex;

/// What `X-Amz-Log-Result` carries.
pub(crate) const LOG_RESULT_BYTES: usize = 4096;

#[derive(Default)]
pub(crate) struct Capture {
    buf: Mutex<Option<String>>,
}

impl Capture {
    /// Starts collecting for a new invocation.
    pub(crate) fn start(&self) {
        *self.lock() = Some(String::new());
    }

    /// Appends a line if an invocation is being captured. Keeps at most
    /// twice the tail size so a chatty handler costs bounded memory.
    pub(crate) fn push(&self, line: &str) {
        let mut guard = self.lock();
        let Some(buf) = guard.as_mut() else {
            return;
        };
        buf.push_str(line);
        buf.push('\n');
        if buf.len() > 2 * LOG_RESULT_BYTES {
            let cut = floor_char_boundary(buf, buf.len() - LOG_RESULT_BYTES);
            buf.drain(..cut);
        }
    }

    /// Stops collecting and returns the last [`LOG_RESULT_BYTES`] of it.
    pub(crate) fn take(&self) -> String {
        let mut buf = self.lock().take().unwrap_or_default();
        if buf.len() > LOG_RESULT_BYTES {
            let cut = floor_char_boundary(&buf, buf.len() - LOG_RESULT_BYTES);
            // Rounding down may leave a few bytes over; step to the next char.
            let cut = if buf.len() - cut > LOG_RESULT_BYTES {
                buf[cut..]
                    .char_indices()
                    .nth(1)
                    .map_or(buf.len(), |(i, _)| cut + i)
            } else {
                cut
            };
            buf.drain(..cut);
        }
        buf
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.buf.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn floor_char_boundary(s: &str, mut at: usize) -> usize {
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_captures_while_started_and_keeps_the_tail() {
        let c = Capture::default();
        c.push("before");
        c.start();
        c.push("one");
        c.push("two");
        assert_eq!(c.take(), "one\ntwo\n");
        c.push("after");
        assert_eq!(c.take(), "");

        c.start();
        for i in 0..2000 {
            c.push(&format!("line {i} é"));
        }
        let tail = c.take();
        assert!(tail.len() <= LOG_RESULT_BYTES, "{}", tail.len());
        assert!(tail.ends_with("line 1999 é\n"));
    }
}
