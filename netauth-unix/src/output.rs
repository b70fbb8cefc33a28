//! Output that cannot abort a command.
//!
//! `println!` panics when its write fails, so `netauth-unix status | head -1`
//! died with exit 101 once `head` had closed the pipe. Every line goes
//! through [`say!`] (standard output) or [`tell!`] (standard error)
//! instead: when a stream's write fails (a closed pipe: `EPIPE`, since Rust
//! ignores `SIGPIPE`; a full disk), the rest of that stream's output is
//! dropped quietly and the command carries on, so it exits with the status
//! it would have had anyway.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// One line on standard output, if it still takes them.
pub fn stdout_line(args: fmt::Arguments<'_>) {
    write_line(&mut io::stdout().lock(), &STDOUT_CLOSED, args);
}

/// One line on standard error, if it still takes them.
pub fn stderr_line(args: fmt::Arguments<'_>) {
    write_line(&mut io::stderr().lock(), &STDERR_CLOSED, args);
}

fn write_line(out: &mut impl Write, closed: &AtomicBool, args: fmt::Arguments<'_>) {
    if closed.load(Ordering::Relaxed) {
        return;
    }
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if written.is_err() {
        closed.store(true, Ordering::Relaxed);
    }
}

/// `println!` that never panics (see the module documentation).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::stdout_line(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics (see the module documentation).
macro_rules! tell {
    ($($arg:tt)*) => {
        $crate::output::stderr_line(format_args!($($arg)*))
    };
}

pub(crate) use {say, tell};

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader went away.
    struct ClosedPipe {
        writes: usize,
    }

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stream_is_dropped_after_the_first_failure() {
        let closed = AtomicBool::new(false);
        let mut pipe = ClosedPipe { writes: 0 };
        write_line(&mut pipe, &closed, format_args!("one {}", 1));
        assert!(closed.load(Ordering::Relaxed));
        write_line(&mut pipe, &closed, format_args!("two"));
        assert_eq!(pipe.writes, 1, "nothing is tried after the pipe closed");

        let open = AtomicBool::new(false);
        let mut buf = Vec::new();
        write_line(&mut buf, &open, format_args!("a {}", "b"));
        write_line(&mut buf, &open, format_args!("c"));
        assert_eq!(buf, b"a b\nc\n");
        assert!(!open.load(Ordering::Relaxed));
    }
}
