//! Builds a node: database, actors, and the HTTP server on a listener (port 0 in tests).
use crate::actors::directory::ShowDirectory;
use crate::actors::lamport::LamportClock;
use crate::actors::show::ShowDeps;
use crate::actors::ApiImporter;
use crate::config::Settings;
use crate::db::schema::write_log;
use crate::db::{create_database_if_missing, Db, DbError};
use crate::wal::LogWriter;
use crate::web::{self, admin::AdminGate, api, pages, AppState};
use actix::Actor;
use actix_web::dev::Server;
use actix_web::middleware::Logger;
use actix_web::{web as aw, App, HttpServer};
use diesel::prelude::*;
use std::net::TcpListener;
use std::sync::atomic::AtomicI64;
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

pub struct Application {
    port: u16,
    server: Server,
    pub state: AppState,
}

/// Opens the node's database: creates it if needed and runs the migrations.
pub fn open_database(settings: &Settings) -> Result<Db, DbError> {
    create_database_if_missing(&settings.database_url)?;
    let db = Db::connect(&settings.database_url, settings.db_pool_size)?;
    db.migrate()?;
    Ok(db)
}

/// The log writer and the clock it stamps with, continuing from what is stored.
pub fn start_log(db: &Db) -> Result<LogWriter, DbError> {
    let mut conn = db.get()?;
    let lamport: Option<i64> = write_log::table.select(diesel::dsl::max(write_log::lamport)).first(&mut conn)?;
    let epoch: Option<i64> = write_log::table.select(diesel::dsl::max(write_log::epoch)).first(&mut conn)?;
    drop(conn);
    let clock = LamportClock::new(lamport.unwrap_or(0).max(0) as u64).start();
    LogWriter::start(db.clone(), clock, Arc::new(AtomicI64::new(epoch.unwrap_or(0))))
}

impl Application {
    pub fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(&settings.bind)?;
        Self::build_on(settings, listener)
    }

    pub fn build_on(settings: Settings, listener: TcpListener) -> Result<Self, StartupError> {
        let db = open_database(&settings)?;
        let writer = start_log(&db)?;
        let arbiters = (0..settings.workers).map(|_| actix::Arbiter::new().handle()).collect();
        let deps = ShowDeps {
            db: db.clone(),
            writer: writer.clone(),
            hold_duration: settings.hold_duration,
            cancel_cutoff: settings.cancel_cutoff,
            layouts: Default::default(),
        };
        let tera = tera::Tera::new(&format!("{}/**/*.html", settings.templates_dir))?;
        let shows = Arc::new(ShowDirectory::new(arbiters, deps));
        let importer = ApiImporter::new(
            settings.flixster.clone(),
            db.clone(),
            writer.clone(),
            shows.clone(),
            settings.import_interval,
        )
        .start();
        let admin = Arc::new(AdminGate::new(settings.admin_password.clone(), settings.admin_session_secret.as_ref()));
        let state = AppState { db, tera: Arc::new(tera), shows, writer, settings: Arc::new(settings), importer, admin };
        let port = listener.local_addr()?.port();
        let server = run(listener, state.clone())?;
        log::info!("marquee node listening on port {port}");
        Ok(Self { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Runs the server in the background of the current System (tests).
    pub fn spawn(self) -> (u16, AppState) {
        let (port, state) = (self.port, self.state.clone());
        actix_rt::spawn(self.server);
        (port, state)
    }
}

fn run(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let limit = state.settings.max_body_bytes;
    let workers = state.settings.workers;
    let assets = state.settings.assets_dir.clone();
    let data = aw::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(aw::JsonConfig::default().limit(limit).error_handler(move |e, _| api::json_error(e, limit)))
            .app_data(aw::PayloadConfig::new(limit))
            .wrap(
                Logger::new("%{method}xi %U %s %b %Dms")
                    .custom_request_replace("method", |req| req.method().to_string()),
            )
            .configure(web::config)
            .service(actix_files::Files::new("/assets", &assets).use_etag(true))
            .default_service(aw::to(pages::not_found))
    })
    .workers(workers)
    .backlog(4096)
    .listen(listener)?
    .run();
    Ok(server)
}
