//! Fault injection: slow answers, error codes per method, dropped
//! connections, call counters; and a black-hole listener.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::Code;

/// The method name that `fail_method` applies to every method.
pub const ANY_METHOD: &str = "*";

#[derive(Default)]
struct FaultState {
    delay: Option<Duration>,
    /// method -> (successes still allowed, then this code)
    failures: HashMap<String, (usize, Code)>,
    counts: HashMap<String, usize>,
}

#[derive(Default)]
struct FaultsInner {
    state: Mutex<FaultState>,
    drop_connections: Arc<AtomicBool>,
}

/// Shared, thread-safe fault switches of one server. Method names are the
/// gRPC method names, e.g. `EntitySearch`.
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<FaultsInner>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

impl Faults {
    fn state(&self) -> MutexGuard<'_, FaultState> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every answer (errors included) is delayed by `d`.
    pub fn set_delay(&self, d: Option<Duration>) {
        self.state().delay = d;
    }

    /// Every call of `method` (or of every method, with `"*"`) answers `code`.
    pub fn fail_method(&self, method: &str, code: Code) {
        self.fail_method_after(method, 0, code);
    }

    /// The next `ok_calls` calls of `method` succeed, the ones after answer `code`.
    pub fn fail_method_after(&self, method: &str, ok_calls: usize, code: Code) {
        self.state()
            .failures
            .insert(method.to_string(), (ok_calls, code));
    }

    /// Removes delay, injected errors and connection dropping (counters stay).
    pub fn clear(&self) {
        let mut st = self.state();
        st.delay = None;
        st.failures.clear();
        self.inner.drop_connections.store(false, Ordering::SeqCst);
    }

    /// Calls seen for `method` since the server started (or `"*"`: all).
    pub fn call_count(&self, method: &str) -> usize {
        let st = self.state();
        if method == ANY_METHOD {
            st.counts.values().sum()
        } else {
            st.counts.get(method).copied().unwrap_or(0)
        }
    }

    pub fn reset_counts(&self) {
        self.state().counts.clear();
    }

    /// While on, new connections are accepted and closed at once, and open
    /// ones fail on their next read or write.
    pub fn set_drop_connections(&self, on: bool) {
        self.inner.drop_connections.store(on, Ordering::SeqCst);
    }

    pub(crate) fn drop_flag(&self) -> Arc<AtomicBool> {
        self.inner.drop_connections.clone()
    }

    /// Counts the call; returns the delay to apply and the injected error, if any.
    pub(crate) fn on_call(&self, method: &str) -> (Option<Duration>, Option<Code>) {
        let mut st = self.state();
        *st.counts.entry(method.to_string()).or_insert(0) += 1;
        let delay = st.delay;
        let mut code = None;
        for key in [method, ANY_METHOD] {
            if let Some((ok_left, c)) = st.failures.get_mut(key) {
                if *ok_left > 0 {
                    *ok_left -= 1;
                } else {
                    code = Some(*c);
                }
                break;
            }
        }
        (delay, code)
    }
}

/// A TCP connection that fails once connection dropping is switched on.
pub(crate) struct FaultyStream {
    inner: TcpStream,
    drop: Arc<AtomicBool>,
}

impl FaultyStream {
    pub(crate) fn new(inner: TcpStream, drop: Arc<AtomicBool>) -> FaultyStream {
        FaultyStream { inner, drop }
    }

    fn dropped(&self) -> bool {
        self.drop.load(Ordering::SeqCst)
    }
}

fn reset() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection dropped by fault injection",
    )
}

impl AsyncRead for FaultyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.dropped() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.dropped() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl Connected for FaultyStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.inner.connect_info()
    }
}

/// A TCP listener on 127.0.0.1:0 that accepts connections and never
/// answers: for deadline tests. Stops (closing every connection) on drop.
pub struct BlackHole {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BlackHole {
    pub fn start() -> BlackHole {
        let listener = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("netauth-blackhole".into())
            .spawn(move || {
                let mut held = Vec::new();
                while !flag.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((s, _)) => held.push(s),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(10))
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
            .expect("spawn black hole thread");
        BlackHole {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_after_counts_successes() {
        let f = Faults::default();
        f.fail_method_after("EntityInfo", 2, Code::Unavailable);
        assert_eq!(f.on_call("EntityInfo").1, None);
        assert_eq!(f.on_call("EntityInfo").1, None);
        assert_eq!(f.on_call("EntityInfo").1, Some(Code::Unavailable));
        assert_eq!(f.on_call("EntitySearch").1, None);
        assert_eq!(f.call_count("EntityInfo"), 3);
        assert_eq!(f.call_count("*"), 4);
        f.fail_method("*", Code::Internal);
        assert_eq!(f.on_call("SystemPing").1, Some(Code::Internal));
        f.clear();
        assert_eq!(f.on_call("EntityInfo").1, None);
    }

    #[test]
    fn black_hole_accepts_and_stays_silent() {
        use std::io::Read;
        let bh = BlackHole::start();
        let mut s = std::net::TcpStream::connect(bh.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 1];
        let err = s.read(&mut buf).unwrap_err();
        assert!(matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
    }
}
