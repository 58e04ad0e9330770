//! A TCP proxy owned by a test, to put between a worker and the test's MariaDB (or any other
//! loopback server) and then misbehave: [`Proxy::pause`] stops forwarding in both directions
//! while keeping every connection open (a partition: the peers see silence, not a reset),
//! [`Proxy::resume`] delivers what was held, in order, [`Proxy::cut`] closes every current
//! connection at once, and [`Proxy::down`] makes the server look stopped (every connection,
//! current or new, is closed at once) until [`Proxy::up`]. Its own tests below attack it with a real MariaDB connection.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::mysql::MySqlConnectOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The address of the server `opts` connects to.
pub async fn server_addr(opts: &MySqlConnectOptions) -> SocketAddr {
    let (host, port) = (opts.get_host(), opts.get_port());
    let mut addrs = tokio::net::lookup_host((host, port)).await.unwrap();
    addrs.next().unwrap()
}

/// What the proxy's tasks share with its handle.
struct Shared {
    target: SocketAddr,
    /// True while paused; every pump waits for false before writing.
    paused: watch::Sender<bool>,
    /// Each open connection's token; cancelling it closes both sides.
    conns: Mutex<HashMap<u64, CancellationToken>>,
    next_id: AtomicU64,
    /// True while down: new connections are closed at once.
    down: AtomicBool,
    /// Cancelled when the proxy is dropped; parent of every connection's token.
    stop: CancellationToken,
}

/// A TCP proxy on `127.0.0.1:<random port>` forwarding every connection to one target.
/// Dropping it stops its tasks and closes every connection through it.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Listens on 127.0.0.1:0 and forwards every accepted connection to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            target,
            paused: watch::channel(false).0,
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            down: AtomicBool::new(false),
            stop: CancellationToken::new(),
        });
        tokio::spawn(accept_loop(listener, shared.clone()));
        Proxy { addr, shared }
    }

    /// The address to connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops forwarding bytes in both directions on every connection, existing or new; the
    /// connections stay open and what is read meanwhile is held for [`Proxy::resume`].
    pub fn pause(&self) {
        self.shared.paused.send_replace(true);
    }

    /// Forwarding continues, held bytes first.
    pub fn resume(&self) {
        self.shared.paused.send_replace(false);
    }

    /// Closes every current connection, both sides, at once; new ones are still accepted.
    pub fn cut(&self) {
        for (_, token) in self.shared.conns.lock().unwrap().drain() {
            token.cancel();
        }
    }

    /// The server looks stopped: every current connection is closed and new ones are closed
    /// as soon as they are accepted, until [`Proxy::up`].
    pub fn down(&self) {
        self.shared.down.store(true, Ordering::SeqCst);
        self.cut();
    }

    /// Connections are forwarded again.
    pub fn up(&self) {
        self.shared.down.store(false, Ordering::SeqCst);
    }

    /// How many proxied connections are open.
    pub fn connections(&self) -> usize {
        self.shared.conns.lock().unwrap().len()
    }

    /// `opts` pointed at the proxy: host 127.0.0.1 and the proxy's port.
    pub fn options_via(&self, opts: &MySqlConnectOptions) -> MySqlConnectOptions {
        opts.clone().host("127.0.0.1").port(self.addr.port())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            () = shared.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, _)) if shared.down.load(Ordering::SeqCst) => drop(client),
            Ok((client, _)) => {
                tokio::spawn(serve(client, shared.clone()));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

/// Removes a connection from [`Shared::conns`] when its task ends.
struct Registered {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.conns.lock().unwrap().remove(&self.id);
    }
}

fn register(shared: &Arc<Shared>) -> (Registered, CancellationToken) {
    let token = shared.stop.child_token();
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    shared.conns.lock().unwrap().insert(id, token.clone());
    let registered = Registered {
        shared: shared.clone(),
        id,
    };
    (registered, token)
}

/// Forwards one connection until both directions end, one fails, or it is cut.
async fn serve(client: TcpStream, shared: Arc<Shared>) {
    let (_registered, cut) = register(&shared);
    let forward = async {
        let server = TcpStream::connect(shared.target).await?;
        let _ = (client.set_nodelay(true), server.set_nodelay(true));
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        tokio::try_join!(
            pump(client_read, server_write, shared.paused.subscribe()),
            pump(server_read, client_write, shared.paused.subscribe()),
        )
    };
    tokio::select! {
        () = cut.cancelled() => {}
        _ = forward => {}
    }
}

/// Copies `src` to `dst`, holding each chunk (and the end of stream) while paused.
async fn pump(
    mut src: OwnedReadHalf,
    mut dst: OwnedWriteHalf,
    mut paused: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = src.read(&mut buf).await?;
        // The sender lives in `Shared`, which this task keeps alive: this cannot fail.
        let _ = paused.wait_for(|paused| !*paused).await;
        if n == 0 {
            return dst.shutdown().await;
        }
        dst.write_all(&buf[..n]).await?;
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::time::Duration;

    use sqlx::mysql::{MySqlConnection, MySqlPool, MySqlPoolOptions};
    use sqlx::{ConnectOptions, Connection};
    use tokio::time::timeout;

    use super::*;

    /// A proxy in front of the test's server and a pool (at most 2 connections) through it.
    async fn through(pool: &MySqlPool) -> (Proxy, MySqlPool, MySqlConnectOptions) {
        let opts = (*pool.connect_options()).clone();
        let proxy = Proxy::start(server_addr(&opts).await).await;
        let via = MySqlPoolOptions::new()
            .max_connections(2)
            .connect_with(proxy.options_via(&opts))
            .await
            .unwrap();
        (proxy, via, opts)
    }

    async fn select_one(conn: &mut MySqlConnection) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT 1").fetch_one(conn).await
    }

    async fn eventually(mut check: impl FnMut() -> bool) {
        timeout(Duration::from_secs(3), async {
            while !check() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("condition never held");
    }

    #[sqlx::test(migrations = false)]
    async fn forwards_queries(pool: MySqlPool) {
        let (proxy, via, opts) = through(&pool).await;
        assert_ne!(proxy.addr().port(), opts.get_port());
        let mut conn = via.acquire().await.unwrap();
        assert_eq!(select_one(&mut conn).await.unwrap(), 1);
        assert_eq!(proxy.connections(), 1);
        let via_opts = proxy.options_via(&opts);
        assert_eq!(
            (via_opts.get_host(), via_opts.get_port()),
            ("127.0.0.1", proxy.addr().port())
        );
        assert_eq!(via_opts.get_database(), opts.get_database());
    }

    #[sqlx::test(migrations = false)]
    async fn pause_holds_existing_and_new_connections_until_resume(pool: MySqlPool) {
        let (proxy, via, opts) = through(&pool).await;
        let mut conn = via.acquire().await.unwrap();
        assert_eq!(select_one(&mut conn).await.unwrap(), 1);

        proxy.pause();
        let mut query = pin!(select_one(&mut conn));
        let via_opts = proxy.options_via(&opts);
        let mut connect = pin!(via_opts.connect());
        let both = async { tokio::join!(&mut query, &mut connect) };
        assert!(timeout(Duration::from_secs(1), both).await.is_err());
        assert_eq!(proxy.connections(), 2, "paused connections stay open");

        proxy.resume();
        let answer = timeout(Duration::from_secs(5), query).await.unwrap();
        assert_eq!(answer.unwrap(), 1);
        let mut fresh = timeout(Duration::from_secs(5), connect)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(select_one(&mut fresh).await.unwrap(), 1);
        fresh.close().await.unwrap();
    }

    #[sqlx::test(migrations = false)]
    async fn cut_fails_the_cut_connection_and_accepts_new_ones(pool: MySqlPool) {
        let (proxy, via, _) = through(&pool).await;
        let mut conn = via.acquire().await.unwrap();
        assert_eq!(select_one(&mut conn).await.unwrap(), 1);

        proxy.cut();
        assert_eq!(proxy.connections(), 0);
        let result = timeout(Duration::from_secs(5), select_one(&mut conn)).await;
        let error = result
            .expect("a cut connection must fail, not hang")
            .unwrap_err();
        assert!(matches!(error, sqlx::Error::Io(_)), "{error:?}");
        conn.close_on_drop();
        drop(conn);

        let mut fresh = via.acquire().await.unwrap();
        assert_eq!(select_one(&mut fresh).await.unwrap(), 1);
        assert_eq!(proxy.connections(), 1);
    }

    #[sqlx::test(migrations = false)]
    async fn dropping_the_proxy_closes_everything(pool: MySqlPool) {
        let (proxy, via, _) = through(&pool).await;
        let mut conn = via.acquire().await.unwrap();
        assert_eq!(select_one(&mut conn).await.unwrap(), 1);
        let addr = proxy.addr();
        let shared = proxy.shared.clone();
        drop(proxy);

        let result = timeout(Duration::from_secs(5), select_one(&mut conn)).await;
        assert!(matches!(result, Ok(Err(sqlx::Error::Io(_)))), "{result:?}");
        eventually(|| shared.conns.lock().unwrap().is_empty()).await;
        // The listener goes with the accept task (strong count 1: only `shared` is left).
        eventually(|| Arc::strong_count(&shared) == 1).await;
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
