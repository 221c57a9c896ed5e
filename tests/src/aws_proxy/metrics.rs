//! CloudWatch, which the SDK speaks in Smithy RPC v2 CBOR and moto 5.2 does not (it answers 404):
//! `GetMetricStatistics` and `DescribeAlarms` answered from what the test sets
//! ([`super::AwsProxy::set_metric`], [`super::AwsProxy::set_alarm`]); nothing set is no datapoint,
//! no alarm.

use super::ProxyState;

const SERVICE_PATH: &str = "/service/GraniteServiceVersion20100801/operation/";

/// The proxy's answer to a CloudWatch call, if the request is one. The request's CBOR is not
/// decoded: the names it asks for appear in it as plain UTF-8, which is all the tests need.
pub(super) fn answer(path: &str, body: &[u8], state: &ProxyState) -> Option<Vec<u8>> {
    let operation = path.strip_prefix(SERVICE_PATH)?;
    let names = |name: &str| contains(body, name.as_bytes());
    let output = match operation {
        "GetMetricStatistics" => {
            let datapoints: Vec<Cbor> = state
                .metrics
                .iter()
                .filter(|((function, metric), _)| names(function) && names(metric))
                .map(|(_, sum)| {
                    Cbor::Map(vec![
                        ("Timestamp", Cbor::Time(1_800_000_000.0)),
                        ("Sum", Cbor::Float(*sum)),
                        ("Unit", Cbor::Text("Count".into())),
                    ])
                })
                .collect();
            Cbor::Map(vec![("Datapoints", Cbor::Array(datapoints))])
        }
        "DescribeAlarms" => {
            let alarms: Vec<Cbor> = state
                .alarms
                .iter()
                .filter(|(name, _)| {
                    names(name)
                        || text_after(body, "AlarmNamePrefix").is_some_and(|p| name.starts_with(&p))
                })
                .map(|(name, value)| {
                    Cbor::Map(vec![
                        ("AlarmName", Cbor::Text(name.clone())),
                        ("StateValue", Cbor::Text(value.clone())),
                    ])
                })
                .collect();
            Cbor::Map(vec![("MetricAlarms", Cbor::Array(alarms))])
        }
        _ => return None,
    };
    let mut body = Vec::new();
    output.encode(&mut body);
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nsmithy-protocol: rpc-v2-cbor\r\nContent-Type: application/cbor\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend(body);
    Some(response)
}

/// The text that follows the key `key` in a CBOR map (short texts: up to 255 bytes).
fn text_after(body: &[u8], key: &str) -> Option<String> {
    let at = body.windows(key.len()).position(|w| w == key.as_bytes())? + key.len();
    let (length, start) = match *body.get(at)? {
        h @ 0x60..=0x77 => (usize::from(h - 0x60), at + 1),
        0x78 => (usize::from(*body.get(at + 1)?), at + 2),
        _ => return None,
    };
    String::from_utf8(body.get(start..start + length)?.to_vec()).ok()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The few CBOR items the answers need (RFC 8949).
enum Cbor {
    Map(Vec<(&'static str, Cbor)>),
    Array(Vec<Cbor>),
    Text(String),
    Float(f64),
    /// Epoch seconds, tag 1.
    Time(f64),
}

impl Cbor {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Cbor::Map(entries) => {
                head(out, 5, entries.len());
                for (key, value) in entries {
                    Cbor::Text((*key).to_string()).encode(out);
                    value.encode(out);
                }
            }
            Cbor::Array(items) => {
                head(out, 4, items.len());
                items.iter().for_each(|item| item.encode(out));
            }
            Cbor::Text(text) => {
                head(out, 3, text.len());
                out.extend(text.as_bytes());
            }
            Cbor::Float(value) => {
                out.push(0xfb);
                out.extend(value.to_be_bytes());
            }
            Cbor::Time(seconds) => {
                out.push(0xc1);
                Cbor::Float(*seconds).encode(out);
            }
        }
    }
}

/// A major type with its length (lengths up to 65535: plenty here).
fn head(out: &mut Vec<u8>, major: u8, length: usize) {
    match length {
        0..=23 => out.push(major << 5 | length as u8),
        24..=255 => out.extend([major << 5 | 24, length as u8]),
        _ => {
            out.push(major << 5 | 25);
            out.extend((length as u16).to_be_bytes());
        }
    }
}
