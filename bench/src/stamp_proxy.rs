//! A forwarding TCP proxy in front of moto that notes when a request naming an operation arrives.
//!
//! The function reaches CodeBuild through it (`AWS_ENDPOINT_URL_CODEBUILD`, which the SDK reads
//! per service) and everything else directly, so "webhook → StartBuild issued" is the time from
//! handing the event over to the moment the StartBuild request reaches the proxy.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct StampProxy {
    pub endpoint: String,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl StampProxy {
    /// Forwards to `upstream` (`host:port`); stamps requests whose head contains `marker`.
    pub fn start(upstream: &str, marker: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stamp proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream.to_string();
        let stamps = arrivals.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let stamps = stamps.clone();
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let (Ok(client_reader), Ok(server_writer)) =
                    (client.try_clone(), server.try_clone())
                {
                    std::thread::spawn(move || {
                        pump(client_reader, server_writer, Some((marker, stamps)))
                    });
                    std::thread::spawn(move || pump(server, client, None));
                }
            }
        });
        Self { endpoint, arrivals }
    }

    /// The first stamp at or after `since`.
    pub fn first_after(&self, since: Instant) -> Option<Instant> {
        self.arrivals
            .lock()
            .ok()?
            .iter()
            .copied()
            .filter(|at| *at >= since)
            .min()
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, stamp: Option<(&str, Arc<Mutex<Vec<Instant>>>)>) {
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((marker, stamps)) = &stamp {
            let at = Instant::now();
            if contains(&buffer[..read], marker.as_bytes()) {
                if let Ok(mut stamps) = stamps.lock() {
                    stamps.push(at);
                }
            }
        }
        if to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
