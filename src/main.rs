use clap::Parser;

use rudis::config::{Cli, Config};

fn main() {
    let cli = Cli::parse();
    let config = match Config::from_cli(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rudis-server: {e}");
            std::process::exit(1);
        }
    };
    if std::env::var_os("RUST_LOG").is_some() {
        env_logger::Builder::from_env(env_logger::Env::default()).init();
    } else {
        // Every level passes the logger's own filter; the global maximum, which CONFIG SET
        // loglevel moves, does the filtering.
        env_logger::Builder::new()
            .filter_level(log::LevelFilter::Debug)
            .init();
        log::set_max_level(config.loglevel.level_filter());
    }
    if let Err(e) = rudis::server::run(config) {
        log::error!("{e}");
        eprintln!("rudis-server: {e}");
        std::process::exit(1);
    }
}
