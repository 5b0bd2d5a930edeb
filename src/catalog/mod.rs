//! The catalog: turning a feed into rows (with default layouts), and importing it.
pub mod layout;

use crate::config::Settings;

pub fn cli_import(_settings: Settings, _args: &[String]) -> Result<(), String> {
    Err("import is not built yet".into())
}
