//! A network that can be cut: a TCP proxy on loopback between the browser and a
//! server. [`CutProxy::cut`] drops every open connection mid-byte and refuses new
//! ones for a while, as a phone in a tunnel loses its network, so that a test can
//! watch a page come back from it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// The proxy: pages opened on its [`CutProxy::url`] reach the server through it.
pub struct CutProxy {
    pub port: u16,
    state: Arc<Network>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Network {
    /// The open connections' copying tasks.
    open: Mutex<Vec<AbortHandle>>,
    /// Until when new connections are refused.
    down_until: Mutex<Option<Instant>>,
}

impl CutProxy {
    /// A proxy on a free loopback port to the server on `target`.
    pub async fn start(target: u16) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the proxy");
        let port = listener.local_addr().expect("the proxy's address").port();
        let state = Arc::new(Network::default());
        let task = tokio::spawn(serve(listener, target, state.clone()));
        CutProxy { port, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Drops every open connection at once and refuses new ones for `how_long`.
    pub fn cut(&self, how_long: Duration) {
        *lock(&self.state.down_until) = Some(Instant::now() + how_long);
        for connection in lock(&self.state.open).drain(..) {
            connection.abort();
        }
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
        for connection in lock(&self.state.open).drain(..) {
            connection.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn serve(listener: TcpListener, target: u16, state: Arc<Network>) {
    while let Ok((mut client, _)) = listener.accept().await {
        let down = lock(&state.down_until).is_some_and(|until| Instant::now() < until);
        if down {
            // Refused: the connection closes before a byte of an answer.
            drop(client);
            continue;
        }
        let copying = tokio::spawn(async move {
            if let Ok(mut server) = TcpStream::connect(("127.0.0.1", target)).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
        let mut open = lock(&state.open);
        open.retain(|connection| !connection.is_finished());
        open.push(copying.abort_handle());
    }
}
