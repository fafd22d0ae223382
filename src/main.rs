//! The `bardcast` binary: parse the configuration, start logging, serve.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use bardcast::clock::SystemClock;
use bardcast::config::{Cli, Command, LogFormat, SegmentArgs, ServeConfig};
use bardcast::App;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let config = match cli.command {
        Some(Command::Serve(c)) => c,
        Some(Command::Segment(args)) => return segment(&args),
        None => cli.serve,
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bardcast: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bardcast: {e}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates at once its own arena (up to 8 per core) and keeps
/// what each frees for that arena: rooms rendering on the blocking threads grew RSS by about
/// 5 MB per busy room that way (`cargo bench --bench rooms`). Two arenas serve two cores.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; it runs first in main, before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// `bardcast segment INPUT --out DIR [--bitrate KBPS]`: one VOD HLS rendition.
fn segment(args: &SegmentArgs) -> ExitCode {
    match segmenter::vod::write_vod(&args.input, &args.out, &args.bitrate) {
        Ok(s) => {
            for w in &s.warnings {
                eprintln!("bardcast: warning: {w}");
            }
            let secs = s.duration.0 as f64 / f64::from(segmenter::SAMPLE_RATE);
            println!(
                "wrote {} ({} segments, {} parts, {secs:.3} s)",
                args.out.join("index.m3u8").display(),
                s.segments,
                s.parts
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bardcast: cannot segment {}: {e}", args.input.display());
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let app = App::start(&config, Arc::new(SystemClock)).await.map_err(anyhow::Error::msg)?;
    let port = app.addr.port();
    let host = if app.addr.ip().is_unspecified() { "localhost".to_owned() } else { app.addr.ip().to_string() };
    println!("bardcast listening on http://{}", app.addr);
    println!("Listeners join at  http://{host}:{port}/");
    let admin_key = app.state.rooms.admin_key().expose();
    println!("GM dashboard:      http://{host}:{port}/gm?key={admin_key}");
    println!("Rooms (admin):     http://{host}:{port}/admin?key={admin_key}");
    app.serve(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

fn init_tracing(config: &ServeConfig) {
    // LOG_LEVEL was validated while parsing the configuration.
    let filter = tracing_subscriber::EnvFilter::new(&config.log_level);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}
