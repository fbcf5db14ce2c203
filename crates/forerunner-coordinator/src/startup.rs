//! [`Application`]: opens the store, bootstraps, binds the listener (so port
//! 0 works and the real port is known before serving) and serves until a
//! shutdown future resolves.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::bootstrap::bootstrap;
use crate::ci::Ci;
use crate::config::Settings;
use crate::store::Store;

/// A coordinator bound to its address, ready to serve.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    store: Store,
    ci: Ci,
}

impl Application {
    /// Creates the data directory, binds `settings.listen`, opens and
    /// migrates the database, and bootstraps root and the tokens.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "failed to create the data directory {}",
                settings.data_dir.display()
            )
        })?;
        // Bind before bootstrapping, so a busy port fails before any token
        // is generated and printed.
        let listener = TcpListener::bind(&settings.listen).await.with_context(|| {
            format!(
                "failed to listen on {} (is another server using it? try --listen 127.0.0.1:0)",
                settings.listen
            )
        })?;
        let store = Store::open(&settings.data_dir).await?;
        bootstrap(&store, &settings).await?;
        let local_addr = listener
            .local_addr()
            .context("failed to read the bound address")?;
        let ci = Ci::new(store.clone(), &settings.data_dir, settings.ci.clone());
        Ok(Application {
            listener,
            local_addr,
            store,
            ci,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<bound address>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The store (for in-process tests and tools).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The CI service (for in-process tools: `forerunner exec` prepares
    /// pipelines and follows traces through it).
    pub fn ci(&self) -> &Ci {
        &self.ci
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stopping = CancellationToken::new();
        let state = AppState {
            store: self.store,
            local_addr: self.local_addr,
            shutdown: stopping.clone(),
            ci: self.ci.clone(),
        };
        let monitor = self.ci.spawn_monitor(stopping.clone());
        let app = api::router(state);
        let shutdown = async move {
            shutdown.await;
            stopping.cancel();
        };
        tracing::info!(address = %self.local_addr, "listening on http://{}", self.local_addr);
        // TCP_NODELAY: streamed bodies (git smart HTTP, artifacts) end with
        // a small write that Nagle's algorithm would hold back until the
        // client's delayed ACK (~40 ms on Linux), once per request.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "failed to set TCP_NODELAY");
            }
        });
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("the HTTP server failed")?;
        monitor.abort();
        tracing::info!("coordinator stopped");
        Ok(())
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "failed to listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "failed to listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received SIGINT, shutting down"),
        () = terminate => tracing::info!("received SIGTERM, shutting down"),
    }
}
