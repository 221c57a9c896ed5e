//! Human output: tables, colour (on a terminal, unless `NO_COLOR`), relative times. Pure: the
//! clock is passed in, so the output can be compared in tests.

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};

#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
}

#[derive(Debug, Clone, Copy)]
pub enum Paint {
    Good,
    Bad,
    Warn,
    Dim,
    Bold,
}

pub fn paint(style: Style, paint: Paint, text: &str) -> String {
    if !style.color {
        return text.to_string();
    }
    let code = match paint {
        Paint::Good => "32",
        Paint::Bad => "31",
        Paint::Warn => "33",
        Paint::Dim => "2",
        Paint::Bold => "1",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The clock, in Unix seconds (the one place the CLI reads it).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `at` relative to `now`: "42s ago", "5m ago", "3h ago", "2d ago", "in 10s".
pub fn ago(now: u64, at: u64) -> String {
    if at > now {
        return format!("in {}", short(at - now));
    }
    format!("{} ago", short(now - at))
}

fn short(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds}s"),
        60..=3599 => format!("{}m", seconds / 60),
        3600..=86_399 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// A span of time: "42s", "3m 05s", "2h 03m", "1d 4h".
pub fn span(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds}s"),
        60..=3599 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        3600..=86_399 => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d {}h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

/// A table with a header and no borders, as `kubectl` and `docker ps` print them.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| h.to_ascii_uppercase()));
    for row in rows {
        table.add_row(row);
    }
    // comfy-table pads every line to the table's width, and starts each cell with a space.
    let mut text: String = table
        .lines()
        .map(|line| format!("{}\n", line.trim_end().strip_prefix(' ').unwrap_or(&line)))
        .collect();
    if text.is_empty() {
        text.push('\n');
    }
    text
}

/// The first characters of a digest (`sha256:` and 12 hex digits), as `docker images` shows them.
pub fn short_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// The revision's `family:number`, from a task definition ARN.
pub fn short_revision(revision: &str) -> String {
    revision.rsplit('/').next().unwrap_or(revision).to_string()
}

pub fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_and_spans() {
        let cases = [
            (100, 100, "0s ago", "0s"),
            (100, 58, "42s ago", "42s"),
            (1000, 695, "5m ago", "5m 05s"),
            (20_000, 9_000, "3h ago", "3h 03m"),
            (300_000, 100_000, "2d ago", "2d 7h"),
        ];
        for (now, at, relative, spanned) in cases {
            assert_eq!(ago(now, at), relative);
            assert_eq!(span(now - at), spanned);
        }
        assert_eq!(ago(100, 110), "in 10s");
    }

    #[test]
    fn colour_only_when_asked() {
        assert_eq!(paint(Style { color: false }, Paint::Bad, "x"), "x");
        assert_eq!(
            paint(Style { color: true }, Paint::Bad, "x"),
            "\x1b[31mx\x1b[0m"
        );
    }

    #[test]
    fn tables_align_columns_without_borders() {
        let text = table(
            &["service", "sha"],
            vec![
                vec!["prod/web".into(), "f8afe6a7".into()],
                vec!["prod/worker".into(), "-".into()],
            ],
        );
        assert_eq!(
            text,
            "SERVICE      SHA\nprod/web     f8afe6a7\nprod/worker  -\n"
        );
    }
}
