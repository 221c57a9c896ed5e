//! A loopback HTTP/1.1 proxy in front of the AWS endpoint that holds every request a fixed
//! latency before forwarding it, and stamps each request's arrival and its answer's departure
//! with the operation it names: sequential round trips become visible (total ≈ round trips ×
//! latency), and the stamps show which calls overlapped.
//!
//! Clients keep their connections alive (botocore's pool, hyper's); each request is forwarded on
//! a new upstream connection (the test support's AWS proxy answers one request per connection)
//! and its answer is written back in ONE send with TCP_NODELAY (an answer split into writes
//! stalls on the client's delayed ACK: ~40 ms a call).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One AWS call as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub operation: String,
    pub arrived: Instant,
    pub answered: Instant,
}

pub struct LatencyProxy {
    pub endpoint: String,
    /// How long each request is held before it is forwarded.
    pub latency: Duration,
    stamps: Arc<Mutex<Vec<Stamp>>>,
}

impl LatencyProxy {
    /// Forwards to `upstream` (`host:port`) after holding each request `latency`.
    pub fn start(upstream: &str, latency: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the latency proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let stamps = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream.to_string();
        let shared = stamps.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = upstream.clone();
                let stamps = shared.clone();
                std::thread::spawn(move || serve(client, &upstream, latency, &stamps));
            }
        });
        Self {
            endpoint,
            latency,
            stamps,
        }
    }

    /// The calls stamped since the last take, in order of arrival.
    pub fn take(&self) -> Vec<Stamp> {
        let mut stamps = std::mem::take(&mut *self.stamps.lock().expect("stamps"));
        stamps.sort_by_key(|s| s.arrived);
        stamps
    }
}

/// The latency from `BENCH_LATENCY_MS` (default 20 ms).
pub fn latency_from_env() -> Duration {
    let ms = std::env::var("BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    Duration::from_millis(ms)
}

/// A parsed HTTP/1.1 message: its start line, headers, and body (de-chunked).
#[derive(Debug, Default, PartialEq)]
pub struct Message {
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The message with a `Content-Length` body and the given `Connection`, as one buffer.
    pub fn to_bytes(&self, connection: &str) -> Vec<u8> {
        let mut bytes = format!("{}\r\n", self.start);
        for (name, value) in &self.headers {
            let lower = name.to_ascii_lowercase();
            if !matches!(
                lower.as_str(),
                "content-length" | "transfer-encoding" | "connection" | "keep-alive"
            ) {
                bytes.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        bytes.push_str(&format!(
            "Content-Length: {}\r\nConnection: {connection}\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = bytes.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// The AWS operation the request names: `X-Amz-Target` (JSON protocols), else `Action=`
    /// (query protocol), else the method and path (REST).
    pub fn operation(&self) -> String {
        if let Some(target) = self.header("x-amz-target") {
            return target.rsplit('.').next().unwrap_or(target).to_string();
        }
        let body = String::from_utf8_lossy(&self.body);
        let query = self.start.split(' ').nth(1).unwrap_or("");
        let query = query.split_once('?').map_or("", |(_, q)| q);
        for pair in body.split('&').chain(query.split('&')) {
            if let Some(action) = pair.strip_prefix("Action=") {
                return action.to_string();
            }
        }
        let mut parts = self.start.split(' ');
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        format!("{method} {}", path.split('?').next().unwrap_or(path))
    }
}

/// Reads one message; `None` at a clean end of stream. A response (`is_response`) without a
/// length runs to the end of the stream.
pub fn read_message(
    reader: &mut impl BufRead,
    is_response: bool,
) -> std::io::Result<Option<Message>> {
    let mut start = String::new();
    if reader.read_line(&mut start)? == 0 {
        return Ok(None);
    }
    let mut message = Message {
        start: start.trim_end().to_string(),
        ..Message::default()
    };
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            message
                .headers
                .push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let chunked = message
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = message
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    message.body = if chunked {
        read_chunked(reader)?
    } else if let Some(length) = length {
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    } else if is_response {
        let mut body = Vec::new();
        reader.read_to_end(&mut body)?;
        body
    } else {
        Vec::new()
    };
    Ok(Some(message))
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size = size.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

/// One client connection: requests in turn until the client closes it.
fn serve(client: TcpStream, upstream: &str, latency: Duration, stamps: &Mutex<Vec<Stamp>>) {
    let _ = client.set_nodelay(true);
    let Ok(reader) = client.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reader);
    let mut client = client;
    while let Ok(Some(request)) = read_message(&mut reader, false) {
        let arrived = Instant::now();
        std::thread::sleep(latency);
        let Ok(response) = forward(&request, upstream) else {
            return;
        };
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let bytes = response.to_bytes(if close { "close" } else { "keep-alive" });
        let answered = Instant::now();
        stamps.lock().expect("stamps").push(Stamp {
            operation: request.operation(),
            arrived,
            answered,
        });
        if client.write_all(&bytes).is_err() || close {
            return;
        }
    }
}

fn forward(request: &Message, upstream: &str) -> std::io::Result<Message> {
    let mut server = TcpStream::connect(upstream)?;
    server.set_nodelay(true)?;
    server.write_all(&request.to_bytes("close"))?;
    read_message(&mut BufReader::new(server), true)?
        .ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &str, is_response: bool) -> Message {
        read_message(&mut bytes.as_bytes(), is_response)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn bodies_by_length_by_chunks_and_to_the_end() {
        let m = parse("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcXYZ", false);
        assert_eq!(m.body, b"abc");
        let m = parse(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            false,
        );
        assert_eq!(m.body, b"abcde");
        let m = parse("HTTP/1.1 200 OK\r\nServer: moto\r\n\r\n{\"a\":1}", true);
        assert_eq!(m.body, b"{\"a\":1}");
        assert_eq!(m.header("server"), Some("moto"));
    }

    #[test]
    fn a_message_is_reframed_with_its_length() {
        let m = parse(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            true,
        );
        let bytes = String::from_utf8(m.to_bytes("keep-alive")).unwrap();
        assert_eq!(
            bytes,
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
        );
    }

    #[test]
    fn operations_by_target_action_or_path() {
        let json = parse(
            "POST / HTTP/1.1\r\nX-Amz-Target: AmazonEC2ContainerService_V20141113.UpdateService\r\n\r\n",
            false,
        );
        assert_eq!(json.operation(), "UpdateService");
        let query = parse(
            "POST / HTTP/1.1\r\nContent-Length: 30\r\n\r\nAction=GetCallerIdentity&V=2011",
            false,
        );
        assert_eq!(query.operation(), "GetCallerIdentity");
        let rest = parse("GET /2015-03-31/functions/f?x=1 HTTP/1.1\r\n\r\n", false);
        assert_eq!(rest.operation(), "GET /2015-03-31/functions/f");
    }

    /// An upstream that answers each request on its own connection, without a length, then
    /// closes it (as moto behind the test support's proxy does).
    fn upstream() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let request = read_message(&mut reader, false).unwrap().unwrap();
                let mut stream = stream;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{}",
                    request.operation()
                );
                stream.write_all(answer.as_bytes()).unwrap();
            }
        });
        address
    }

    #[test]
    fn keep_alive_and_concurrent_connections_are_held_and_stamped() {
        let latency = Duration::from_millis(30);
        let proxy = LatencyProxy::start(&upstream(), latency);
        let address = proxy.endpoint.trim_start_matches("http://").to_string();
        let client = |ops: &'static [&'static str]| {
            let address = address.clone();
            std::thread::spawn(move || {
                let stream = TcpStream::connect(&address).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                for op in ops {
                    let request = format!(
                        "POST / HTTP/1.1\r\nX-Amz-Target: S.{op}\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
                    );
                    stream.write_all(request.as_bytes()).unwrap();
                    let answer = read_message(&mut reader, true).unwrap().unwrap();
                    assert_eq!(answer.header("connection"), Some("keep-alive"));
                    assert_eq!(answer.body, op.as_bytes());
                }
            })
        };
        let (a, b) = (client(&["A1", "A2"]), client(&["B1"]));
        a.join().unwrap();
        b.join().unwrap();
        let stamps = proxy.take();
        let mut ops: Vec<&str> = stamps.iter().map(|s| s.operation.as_str()).collect();
        ops.sort();
        assert_eq!(ops, ["A1", "A2", "B1"]);
        assert!(stamps.iter().all(|s| s.answered - s.arrived >= latency));
        let rt = crate::round_trips::of_stamps(&stamps);
        assert_eq!(rt.total, 2, "A1 then A2, B1 beside A1: {stamps:?}");
    }
}
