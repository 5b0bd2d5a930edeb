//! `marquee serve | migrate | import`.
use crate::config::Settings;
use crate::startup::{open_database, Application};

const USAGE: &str = "usage: marquee serve | migrate | import --from DIR";

pub fn main() -> Result<(), String> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,actix_server=warn")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    match args.first().map(String::as_str) {
        Some("serve") | None => serve(settings),
        Some("migrate") => {
            open_database(&settings).map_err(|e| e.to_string())?;
            log::info!("database is migrated");
            Ok(())
        }
        Some("import") => crate::catalog::cli_import(settings, &args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{other}'\n{USAGE}")),
    }
}

fn serve(settings: Settings) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).map_err(|e| e.to_string())?;
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}
