//! HTTP/1.1 as the stand-in speaks it: one request read per connection, one answer written with
//! `Connection: close`; percent-decoding, paging, and RFC 3339 times.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The longest request head the stand-in reads, and the largest body.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 8 * 1024 * 1024;

/// One request from a client.
pub(super) struct Request {
    pub(super) method: String,
    /// As sent, without the query.
    pub(super) path: String,
    /// As sent, after the `?` (empty when none).
    pub(super) query: String,
    headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    /// The body came chunked (not read: the stand-in rejects it).
    pub(super) chunked: bool,
}

impl Request {
    /// The value of header `name` (case-insensitive), trimmed.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What reading a connection gave.
pub(super) enum Incoming {
    /// The client closed the connection before sending a request.
    Closed,
    /// Not an HTTP/1.1 request the stand-in can read: why.
    Malformed(String),
    Request(Request),
}

pub(super) fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Incoming> {
    let mut lines = Vec::new();
    let mut head_length = 0;
    loop {
        let mut line = String::new();
        let read = reader.read_line(&mut line)?;
        if read == 0 {
            if lines.is_empty() {
                return Ok(Incoming::Closed);
            }
            return Ok(Incoming::Malformed(
                "the connection closed in the request head".into(),
            ));
        }
        head_length += read;
        if head_length > MAX_HEAD {
            return Ok(Incoming::Malformed("the request head is too long".into()));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            if lines.is_empty() {
                continue; // a stray empty line before the request line is tolerated
            }
            break;
        }
        lines.push(line);
    }
    let mut request_line = lines[0].split(' ');
    let (Some(method), Some(target), Some(version)) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return Ok(Incoming::Malformed(format!(
            "bad request line {:?}",
            lines[0]
        )));
    };
    if !version.starts_with("HTTP/1.") {
        return Ok(Incoming::Malformed(format!(
            "unsupported version {version}"
        )));
    }
    let mut headers = Vec::new();
    for line in &lines[1..] {
        let Some((name, value)) = line.split_once(':') else {
            return Ok(Incoming::Malformed(format!("bad header line {line:?}")));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: Vec::new(),
        chunked: false,
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        request.chunked = true;
        return Ok(Incoming::Request(request));
    }
    let length = match request.header("content-length").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(length)) if length <= MAX_BODY => length,
        Some(Ok(length)) => return Ok(Incoming::Malformed(format!("body of {length} bytes"))),
        Some(Err(_)) => return Ok(Incoming::Malformed("bad Content-Length".into())),
    };
    request.body = vec![0; length];
    reader.read_exact(&mut request.body)?;
    Ok(Incoming::Request(request))
}

/// An answer: a status, a JSON body, and headers beyond the usual ones.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Value,
    pub(super) headers: Vec<(&'static str, String)>,
}

impl Answer {
    /// A normal answer: with GitHub's rate-limit headers, far from the limit.
    pub(super) fn json(status: u16, body: Value) -> Self {
        Self::bare(status, body)
            .with("x-ratelimit-limit", "5000")
            .with("x-ratelimit-remaining", "4999")
            .with("x-ratelimit-resource", "core")
    }

    /// A normal answer `{"message": message}`.
    pub(super) fn message(status: u16, message: &str) -> Self {
        Self::json(
            status,
            json!({"message": message, "documentation_url": "https://docs.github.com/rest"}),
        )
    }

    /// An answer without the rate-limit headers (the faults set their own).
    pub(super) fn bare(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }

    pub(super) fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// With GitHub's `Link` header to the next page, when there is one.
    pub(super) fn with_link(self, link: Option<String>) -> Self {
        match link {
            Some(link) => self.with("link", link),
            None => self,
        }
    }

    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let body = self.body.to_string();
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        bytes
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// `%XX` decoded (and `+` as a space where `plus_is_space`, as in a query); `None` when
/// malformed or not UTF-8.
pub(super) fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes all but RFC 3986's unreserved characters.
pub(super) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A query's `name=value` pairs, decoded; `None` when one is malformed.
pub(super) fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(name, true)?, percent_decode(value, true)?))
        })
        .collect()
}

/// The value of query parameter `name`.
pub(super) fn param<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// A page of a list GitHub pages with `per_page` (default 30, at most 100) and `page`
/// (default 1), and the `Link` header to the next page when there is one. A `per_page` over 100
/// or a value that is not a number is said in `problems` (GitHub itself caps or ignores it).
pub(super) fn paged<T>(
    items: Vec<T>,
    query: &[(String, String)],
    next_url: &str,
    problems: &mut Vec<String>,
) -> (Vec<T>, Option<String>) {
    let mut number = |name: &str, default: usize| match param(query, name) {
        None => default,
        Some(text) => match text.parse::<usize>() {
            Ok(value) if value >= 1 => value,
            _ => {
                problems.push(format!("{name}={text} is not a positive number"));
                default
            }
        },
    };
    let mut per_page = number("per_page", 30);
    let page = number("page", 1);
    if per_page > 100 {
        problems.push(format!(
            "per_page={per_page} is over GitHub's maximum of 100"
        ));
        per_page = 100;
    }
    let total = items.len();
    let start = per_page.saturating_mul(page - 1);
    let shown: Vec<T> = items.into_iter().skip(start).take(per_page).collect();
    let link = (start + shown.len() < total).then(|| {
        let mut pairs: Vec<String> = query
            .iter()
            .filter(|(key, _)| key != "page")
            .map(|(key, value)| format!("{}={}", percent_encode(key), percent_encode(value)))
            .collect();
        pairs.push(format!("page={}", page + 1));
        format!("<{next_url}?{}>; rel=\"next\"", pairs.join("&"))
    });
    (shown, link)
}

/// Seconds since the Unix epoch, now.
pub(super) fn now_epoch() -> u64 {
    epoch_of(SystemTime::now())
}

pub(super) fn epoch_of(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `epoch` (seconds) as RFC 3339 UTC, as GitHub writes times: `2026-12-03T23:00:00Z`.
pub(super) fn rfc3339(epoch: u64) -> String {
    let (year, month, day) = civil_from_days((epoch / 86_400) as i64);
    let seconds = epoch % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// The proleptic Gregorian date of day `days` since 1970-01-01: counted in 400-year eras of
/// 146 097 days from 0000-03-01, so that the leap day ends each year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let from_march_0000 = days + 719_468;
    let era = from_march_0000.div_euclid(146_097);
    let day_of_era = from_march_0000.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
