//! Builds a node: database, actors, and the HTTP server on a listener (port 0 in tests).
use crate::actors::directory::ShowDirectory;
use crate::actors::lamport::{LamportClock, SharedClock};
use crate::actors::show::ShowDeps;
use crate::actors::ApiImporter;
use crate::cluster::client::Rpc;
use crate::cluster::config::PeerSource;
use crate::cluster::election::ElectionCoordinator;
use crate::cluster::replication::ReplicationStreamer;
use crate::cluster::ClusterState;
use crate::config::Settings;
use crate::db::schema::write_log;
use crate::db::{create_database_if_missing, Db, DbError};
use crate::domain::TicketKey;
use crate::metrics::Metrics;
use crate::wal::writer::last_position;
use crate::wal::{CommitTracker, LogWriter};
use crate::web::{self, admin::AdminGate, api, pages, AppState};
use actix::{Actor, Addr, AsyncContext};
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Logger};
use actix_web::{web as aw, App, HttpServer};
use diesel::prelude::*;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot load the templates: {0}")]
    Templates(#[from] tera::Error),
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
}

/// Connections that may wait to be accepted. actix's `backlog()` applies only to sockets it
/// binds itself, and a std `TcpListener` listens with 128: a burst of new clients (a flash
/// sale's first second) overflowed that queue and waited a second for the SYN to be retried.
const BACKLOG: i32 = 4096;

/// How often the node's histograms are folded into their buckets between scrapes.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Listens on `addr` with [`BACKLOG`] (and SO_REUSEADDR, as actix does for its own sockets).
pub fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let addr: SocketAddr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("'{addr}' is not an address")))?;
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

pub struct Application {
    port: u16,
    server: Server,
    /// The node-to-node listener's port and server, when INTERNAL_BIND gives it its own.
    internal: Option<(u16, Server)>,
    /// The live seat maps' listener's port and server, when LIVE_BIND gives it its own.
    live: Option<(u16, Server)>,
    pub state: AppState,
}

/// Opens the node's database: creates it if needed and runs the migrations.
pub fn open_database(settings: &Settings) -> Result<Db, DbError> {
    create_database_if_missing(&settings.database_url)?;
    let db = Db::connect(&settings.database_url, settings.db_pool_size)?;
    db.migrate()?;
    Ok(db)
}

/// The node's clock, continuing from the log's latest time: the actor, and the same clock
/// for the log writer.
fn start_clock(db: &Db) -> Result<(Addr<LamportClock>, SharedClock), DbError> {
    let mut conn = db.get()?;
    let lamport: Option<i64> = write_log::table.select(diesel::dsl::max(write_log::lamport)).first(&mut conn)?;
    let clock = LamportClock::new(lamport.unwrap_or(0).max(0) as u64);
    let shared = clock.shared();
    Ok((clock.start(), shared))
}

/// A log writer for offline work (imports from the command line, seeding benchmarks):
/// this node alone, as its own master.
pub fn start_log(db: &Db) -> Result<LogWriter, DbError> {
    LogWriter::start_alone(db.clone(), start_clock(db)?.1, 1)
}

impl Application {
    pub fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = listen(&settings.bind)?;
        Self::build_on(settings, listener)
    }

    /// Builds the node with its public listener; the internal one (INTERNAL_BIND, when set)
    /// is bound here too (port 0 in tests: see [`Application::internal_port`]).
    pub fn build_on(settings: Settings, listener: TcpListener) -> Result<Self, StartupError> {
        let internal = settings.internal_bind.as_deref().map(listen).transpose()?;
        let live = settings.live_bind.as_deref().map(listen).transpose()?;
        let db = open_database(&settings)?;
        let mut conn = db.get()?;
        let pos = last_position(&mut conn)?;
        let (hard, log_index) = crate::cluster::election::load_state(&mut conn)?;
        drop(conn);
        let epoch = hard.epoch;
        let peers = match &settings.cluster.peers {
            PeerSource::Static(p) => p.clone(),
            PeerSource::Dns { .. } => Vec::new(),
        };
        // Static PEERS: every configured node votes until the log says otherwise. DNS: the
        // membership comes from the log (a fresh node joins, or founds, a cluster).
        let initial = match &settings.cluster.peers {
            PeerSource::Static(p) => Some(crate::cluster::core::Membership::of_voters(
                p.iter().map(|p| p.id).chain([settings.cluster.node_id]),
            )),
            PeerSource::Dns { .. } => None,
        };
        let cluster = Arc::new(ClusterState::new(settings.cluster.clone(), epoch, peers));
        let metrics = Metrics::new();
        let upkeep = metrics.clone();
        actix_rt::spawn(async move {
            let mut every = actix_rt::time::interval(METRICS_UPKEEP);
            loop {
                every.tick().await;
                upkeep.upkeep();
            }
        });
        let (clock, shared_clock) = start_clock(&db)?;
        let tracker = Arc::new(CommitTracker::default());
        let (appended_tx, appended_rx) = futures::channel::mpsc::unbounded();
        let writer = LogWriter::start(
            db.clone(),
            shared_clock,
            cluster.node_id,
            cluster.gate.clone(),
            tracker,
            Some(appended_tx),
            settings.cluster.replication_timeout,
            metrics.clone(),
        )?;
        let rpc = Rpc { cluster: cluster.clone(), clock: clock.clone() };
        let streamer = {
            let (rpc, db) = (rpc.clone(), db.clone());
            ReplicationStreamer::create(move |ctx| {
                ctx.add_stream(appended_rx);
                ReplicationStreamer::new(rpc, db)
            })
        };
        let arbiters = (0..settings.workers).map(|_| actix::Arbiter::new().handle()).collect();
        let deps = ShowDeps {
            db: db.clone(),
            cluster: cluster.clone(),
            writer: writer.clone(),
            hold_duration: settings.hold_duration,
            cancel_cutoff: settings.cancel_cutoff,
            limits: settings.hold_limits,
            lonely_seat_rule: settings.lonely_seat_rule,
            layouts: Default::default(),
        };
        let shows = Arc::new(ShowDirectory::new(arbiters, deps));
        let coordinator = ElectionCoordinator::new(
            rpc.clone(),
            db.clone(),
            writer.clone(),
            streamer.clone(),
            shows.clone(),
            clock,
            hard,
            log_index,
            initial,
            metrics.clone(),
        )
        .start();
        let tera = tera::Tera::new(&format!("{}/**/*.html", settings.templates_dir))?;
        let catalog_lock = crate::catalog::CatalogLock::default();
        let importer = ApiImporter::new(
            settings.flixster.clone(),
            db.clone(),
            writer.clone(),
            shows.clone(),
            settings.import_interval,
            metrics.clone(),
            catalog_lock.clone(),
        )
        .start();
        let admin = Arc::new(AdminGate::with_hours(
            settings.admin_password.clone(),
            settings.admin_session_secret.as_ref(),
            settings.admin_session_hours,
        ));
        log::info!(
            "node {} starting: epoch {epoch}, log at {}, {} peers configured",
            cluster.node_id,
            pos.last_lsn,
            cluster.peers().len()
        );
        let tickets = Arc::new(match &settings.ticket_key {
            Some(secret) => TicketKey::from_secret(secret.expose()),
            None => {
                log::warn!("neither TICKET_KEY nor CLUSTER_SECRET is set: e-tickets verify on this process only");
                TicketKey::random()
            }
        });
        match &settings.smtp_url {
            Some(url) => {
                let mailer = crate::actors::mailer::Mailer::new(
                    db.clone(),
                    writer.clone(),
                    cluster.clone(),
                    tickets.clone(),
                    url.expose(),
                    &settings.mail_from,
                    settings.smtp_timeout,
                )
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
                mailer.start();
            }
            None => log::info!("SMTP_URL is not set: no booking emails are sent"),
        }
        let state = AppState {
            db,
            tera: Arc::new(tera),
            shows,
            writer,
            settings: Arc::new(settings),
            cluster,
            coordinator,
            streamer,
            forwarder: crate::web::forwarder::WriteForwarder::new(rpc.clone()).start(),
            rpc,
            replays: Arc::default(),
            importer,
            admin,
            tickets,
            checkins: Arc::default(),
            lookups: Arc::default(),
            metrics,
            catalog_lock,
            pages: Arc::new(crate::web::page_cache::PageCaches::new(
                crate::domain::random_token(32),
                crate::web::page_cache::Bounds::default(),
            )),
        };
        let port = listener.local_addr()?.port();
        // A side listener, when it has its own address: its port and server.
        type Runner = fn(TcpListener, AppState) -> std::io::Result<Server>;
        let side = |l: Option<TcpListener>, runner: Runner, what: &str, note: &str| {
            let Some(l) = l else { return Ok::<_, std::io::Error>(None) };
            let port = l.local_addr()?.port();
            let server = runner(l, state.clone())?;
            log::info!("{what} listening on port {port} {note}");
            Ok(Some((port, server)))
        };
        let internal = side(internal, run_internal, "node-to-node endpoints", "only")?;
        let workers = format!("too ({} workers)", state.settings.live_workers);
        let live = side(live, run_live, "live seat maps", &workers)?;
        let server = run(listener, state.clone(), internal.is_none())?;
        log::info!("marquee node listening on port {port}");
        Ok(Self { port, server, internal, live, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the node-to-node listener: its own (INTERNAL_BIND), else the public one.
    pub fn internal_port(&self) -> u16 {
        self.internal.as_ref().map_or(self.port, |(port, _)| *port)
    }

    /// The port of the live seat maps' own listener (LIVE_BIND), if it has one.
    pub fn live_port(&self) -> Option<u16> {
        self.live.as_ref().map(|(port, _)| *port)
    }

    /// Runs until the servers stop (every listener of the node).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let others = self.internal.into_iter().chain(self.live).map(|(_, s)| s);
        futures::future::try_join_all(std::iter::once(self.server).chain(others)).await.map(|_| ())
    }

    /// Stops the node's servers (the public one and, if separate, the internal and live ones).
    pub fn handle(&self) -> Handle {
        Handle {
            public: self.server.handle(),
            internal: self.internal.as_ref().map(|(_, s)| s.handle()),
            live: self.live.as_ref().map(|(_, s)| s.handle()),
        }
    }

    /// Runs the server in the background of the current System (tests).
    pub fn spawn(self) -> (u16, AppState) {
        let (port, state) = (self.port, self.state.clone());
        actix_rt::spawn(self.server);
        for (_, server) in self.internal.into_iter().chain(self.live) {
            actix_rt::spawn(server);
        }
        (port, state)
    }
}

/// Stops a node's HTTP servers.
#[derive(Clone)]
pub struct Handle {
    public: actix_web::dev::ServerHandle,
    internal: Option<actix_web::dev::ServerHandle>,
    live: Option<actix_web::dev::ServerHandle>,
}

impl Handle {
    /// Stops the public listener, the live one, then the node-to-node one.
    pub async fn stop(&self, graceful: bool) {
        self.public.stop(graceful).await;
        if let Some(live) = &self.live {
            live.stop(graceful).await;
        }
        if let Some(internal) = &self.internal {
            internal.stop(graceful).await;
        }
    }
}

/// The public server: pages, the API, the admin area, websockets, assets; and the
/// node-to-node endpoints too when they have no listener of their own (`with_internal`).
/// Without them, `/internal/...` here is the ordinary not-found page.
fn run(listener: TcpListener, state: AppState, with_internal: bool) -> std::io::Result<Server> {
    let limit = state.settings.max_body_bytes;
    let workers = state.settings.workers;
    let assets = state.settings.assets_dir.clone();
    let data = aw::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(aw::JsonConfig::default().limit(limit).error_handler(move |e, _| api::json_error(e, limit)))
            .app_data(aw::PayloadConfig::new(limit))
            .wrap(web::headers::security_headers())
            .wrap(request_log())
            .wrap(from_fn(web::metrics::count_request))
            .configure(|cfg| web::config(cfg, with_internal))
            .service(actix_files::Files::new("/assets", &assets).use_etag(true))
            .default_service(aw::to(pages::not_found))
    })
    .workers(workers)
    .disable_signals()
    .backlog(BACKLOG as u32)
    .listen(listener)?
    .run();
    Ok(server)
}

/// The node-to-node server (INTERNAL_BIND): `/internal/`, `/metrics` and `/healthz`,
/// nothing else.
fn run_internal(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let workers = state.settings.workers;
    run_side(listener, state, workers, web::internal_config, false)
}

/// The live seat maps' server (LIVE_BIND): `/shows/{id}/live` and `/healthz` on workers of
/// their own (LIVE_WORKERS). A socket's task runs on the worker that accepted it, so a
/// change's fan-out to every watcher runs here, not on the workers that take holds.
fn run_live(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let workers = state.settings.live_workers;
    run_side(listener, state, workers, web::live_config, true)
}

/// A listener of its own for some of the node's routes (`routes`), on `workers` workers;
/// anything else there is a plain 404. `site_headers`: the site's security headers too
/// (for what a browser reaches).
fn run_side(
    listener: TcpListener,
    state: AppState,
    workers: usize,
    routes: fn(&mut aw::ServiceConfig),
    site_headers: bool,
) -> std::io::Result<Server> {
    let data = aw::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(actix_web::middleware::Condition::new(site_headers, web::headers::security_headers()))
            .wrap(request_log())
            .wrap(from_fn(web::metrics::count_request))
            .configure(routes)
            .default_service(aw::to(|| async {
                Err::<actix_web::HttpResponse, _>(web::WebError::NotFound("no such endpoint".into()))
            }))
    })
    .workers(workers)
    .disable_signals()
    .backlog(BACKLOG as u32)
    .listen(listener)?
    .run();
    Ok(server)
}

/// One log line per request.
fn request_log() -> Logger {
    Logger::new("%{method}xi %U %s %b %Dms").custom_request_replace("method", |req| req.method().to_string())
}
