//! A minimal Lambda Runtime API on loopback, for running a real `bootstrap` the way Lambda does:
//! the process starts, asks `GET /2018-06-01/runtime/invocation/next`, gets one event, posts its
//! response, asks again. It records when each of those happened (for the benchmarks).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the function answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub request_id: String,
    pub body: String,
    pub is_error: bool,
    pub at: Instant,
}

#[derive(Default)]
struct Shared {
    /// When the process asked for its first event (end of init).
    first_next: Option<Instant>,
    init_error: Option<String>,
}

pub struct RuntimeApi {
    pub address: String,
    events: Sender<(String, String)>,
    answers: Receiver<Answer>,
    shared: Arc<Mutex<Shared>>,
    counter: u64,
}

impl RuntimeApi {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        let (event_tx, event_rx) = channel::<(String, String)>();
        let (answer_tx, answer_rx) = channel::<Answer>();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let events = Arc::new(Mutex::new(event_rx));
        let thread_shared = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let events = events.clone();
                let answers = answer_tx.clone();
                let shared = thread_shared.clone();
                std::thread::spawn(move || serve(stream, events, answers, shared));
            }
        });
        RuntimeApi {
            address,
            events: event_tx,
            answers: answer_rx,
            shared,
            counter: 0,
        }
    }

    /// When the function first asked for an event, if it has.
    pub fn first_next(&self) -> Option<Instant> {
        self.shared.lock().ok().and_then(|s| s.first_next)
    }

    pub fn init_error(&self) -> Option<String> {
        self.shared.lock().ok().and_then(|s| s.init_error.clone())
    }

    /// Hands one event to the function and waits for its answer.
    pub fn invoke(&mut self, event: &str, timeout: Duration) -> Result<(Answer, Duration), String> {
        self.counter += 1;
        let request_id = format!("bench-{:08}", self.counter);
        let sent = Instant::now();
        self.events
            .send((request_id.clone(), event.to_string()))
            .map_err(|e| e.to_string())?;
        let answer = self.answers.recv_timeout(timeout).map_err(|_| {
            format!(
                "no answer within {timeout:?}; init error: {:?}",
                self.init_error()
            )
        })?;
        let took = answer.at.duration_since(sent);
        Ok((answer, took))
    }
}

fn serve(
    stream: TcpStream,
    events: Arc<Mutex<Receiver<(String, String)>>>,
    answers: Sender<Answer>,
    shared: Arc<Mutex<Shared>>,
) {
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => content_length = value.trim().parse().unwrap_or(0),
                    "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                    _ => {}
                }
            }
        }
        let body = if chunked {
            read_chunked(&mut reader)
        } else {
            let mut body = vec![0u8; content_length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            body
        };
        let at = Instant::now();
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let reply = if path.ends_with("/runtime/invocation/next") {
            if let Ok(mut s) = shared.lock() {
                s.first_next.get_or_insert(at);
            }
            let next = events.lock().ok().and_then(|rx| rx.recv().ok());
            let Some((request_id, event)) = next else {
                return;
            };
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() + 30_000)
                .unwrap_or_default();
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {request_id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\
                 Content-Length: {}\r\n\r\n{event}",
                event.len()
            )
        } else {
            let text = String::from_utf8_lossy(&body).to_string();
            if path.ends_with("/runtime/init/error") {
                if let Ok(mut s) = shared.lock() {
                    s.init_error = Some(text);
                }
            } else if let Some(rest) = path.strip_prefix("/2018-06-01/runtime/invocation/") {
                let (request_id, kind) = rest.split_once('/').unwrap_or((rest, ""));
                let _ = answers.send(Answer {
                    request_id: request_id.to_string(),
                    body: text,
                    is_error: kind == "error",
                    at,
                });
            }
            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n".to_string()
        };
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line).unwrap_or(0) == 0 {
            return body;
        }
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
            .unwrap_or(0);
        let mut chunk = vec![0u8; size + 2];
        if reader.read_exact(&mut chunk).is_err() {
            return body;
        }
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&chunk[..size]);
    }
}
