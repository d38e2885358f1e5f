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
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(config.loglevel.filter()),
    )
    .init();
    if let Err(e) = rudis::server::run(config) {
        log::error!("{e}");
        eprintln!("rudis-server: {e}");
        std::process::exit(1);
    }
}
