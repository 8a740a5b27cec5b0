//! Reads Prometheus' text format (what `/metrics` serves) into figures for a terminal:
//! counters and gauges as they are, each histogram as its count and its p50/p99 estimated
//! from the buckets (as PromQL's `histogram_quantile`: linear within a bucket).
//!
//! Written here rather than taken from a crate: the server's own output is the only input,
//! it needs ~80 lines, and the parsers on crates.io bring a date library along.

use serde::Serialize;
use std::collections::BTreeMap;

/// One line of the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Figure {
    /// The series' name, without `_bucket`/`_count`/`_sum` for a histogram.
    pub name: String,
    /// Its labels, `key=value` joined by commas (without `le`).
    pub labels: String,
    /// The value, or a histogram's `count=…, p50=…, p99=…`.
    pub value: String,
}

/// A histogram's buckets (upper bound → cumulative count) and count, by series.
#[derive(Default)]
struct Histogram {
    buckets: Vec<(f64, f64)>,
    count: f64,
}

/// Label pairs in the order served.
type Labels = Vec<(String, String)>;

/// One sample line: name, labels, value. `None` for comments and bad lines.
fn sample(line: &str) -> Option<(String, Labels, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series.to_string(), Vec::new(), value));
    };
    let body = rest.strip_suffix('}')?;
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => return None,
                },
                '"' => break,
                other => value.push(other),
            }
        }
        labels.push((key.trim_start_matches(',').trim().to_string(), value));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Some((name.to_string(), labels, value))
}

fn join(labels: &[(String, String)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The `q` quantile of a histogram, linear within its bucket; `None` when it is empty.
fn quantile(q: f64, histogram: &Histogram) -> Option<f64> {
    if histogram.count <= 0.0 {
        return None;
    }
    let rank = q * histogram.count;
    let mut lower = (0.0, 0.0);
    for &(bound, cumulative) in &histogram.buckets {
        if cumulative >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let in_bucket = cumulative - lower.1;
            let fraction = if in_bucket > 0.0 {
                (rank - lower.1) / in_bucket
            } else {
                1.0
            };
            return Some(lower.0 + (bound - lower.0) * fraction);
        }
        lower = (bound, cumulative);
    }
    Some(lower.0)
}

fn seconds(value: f64) -> String {
    if value < 1.0 {
        format!("{:.2}ms", value * 1000.0)
    } else {
        format!("{value:.2}s")
    }
}

/// Every series of `text`, histograms folded into one line each, in the order served.
pub fn summarize(text: &str) -> Vec<Figure> {
    let histograms: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, kind)| *kind == "histogram")
        .map(|(name, _)| name)
        .collect();
    let mut figures = Vec::new();
    let mut folded: BTreeMap<(String, String), Histogram> = BTreeMap::new();
    let mut order = Vec::new();
    for (name, labels, value) in text.lines().filter_map(sample) {
        let base = ["_bucket", "_count", "_sum", "_created"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| histograms.contains(base));
        let Some(base) = base else {
            figures.push(Some(Figure {
                name,
                labels: join(&labels),
                value: format_value(value),
            }));
            continue;
        };
        let le = labels
            .iter()
            .find(|(k, _)| k == "le")
            .and_then(|(_, v)| match v.as_str() {
                "+Inf" => Some(f64::INFINITY),
                other => other.parse().ok(),
            });
        let rest: Vec<_> = labels.into_iter().filter(|(k, _)| k != "le").collect();
        let key = (base.to_string(), join(&rest));
        if !folded.contains_key(&key) {
            order.push(key.clone());
            // A placeholder keeps the histogram where it was served.
            figures.push(None);
        }
        let histogram = folded.entry(key).or_default();
        match (name.ends_with("_bucket"), le) {
            (true, Some(le)) => histogram.buckets.push((le, value)),
            _ if name.ends_with("_count") => histogram.count = value,
            _ => {}
        }
    }
    let mut order = order.into_iter();
    figures
        .into_iter()
        .filter_map(|figure| match figure {
            Some(figure) => Some(figure),
            None => {
                let key = order.next()?;
                let histogram = folded.get(&key)?;
                let seconds_based = key.0.ends_with("_seconds");
                let show = |v: f64| {
                    if seconds_based {
                        seconds(v)
                    } else {
                        format_value(v)
                    }
                };
                let mut value = format!("count={}", format_value(histogram.count));
                for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
                    if let Some(v) = quantile(q, histogram) {
                        value.push_str(&format!(", {label}={}", show(v)));
                    }
                }
                Some(Figure {
                    name: key.0,
                    labels: key.1,
                    value,
                })
            }
        })
        .collect()
}

fn format_value(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP bacalhau_jobs Jobs stored, by type and state.
# TYPE bacalhau_jobs gauge
bacalhau_jobs{type="batch",state="Completed"} 12
# TYPE bacalhau_job_duration_seconds histogram
bacalhau_job_duration_seconds_sum 1.5
bacalhau_job_duration_seconds_count 10
bacalhau_job_duration_seconds_bucket{le="0.1"} 0
bacalhau_job_duration_seconds_bucket{le="0.2"} 10
bacalhau_job_duration_seconds_bucket{le="+Inf"} 10
# TYPE bacalhau_api_requests counter
bacalhau_api_requests_total{method="GET",route="/api/v1/orchestrator/jobs/{id}",status="200"} 3
# EOF
"#;

    #[test]
    fn folds_histograms_and_keeps_the_rest_in_order() {
        let figures = summarize(TEXT);
        let names: Vec<_> = figures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bacalhau_jobs",
                "bacalhau_job_duration_seconds",
                "bacalhau_api_requests_total"
            ]
        );
        assert_eq!(figures[0].labels, "type=batch,state=Completed");
        assert_eq!(figures[0].value, "12");
        // All 10 fall in (0.1, 0.2]: the median is half way, p99 near the top.
        assert_eq!(figures[1].value, "count=10, p50=150.00ms, p99=199.00ms");
        assert_eq!(
            figures[2].labels,
            "method=GET,route=/api/v1/orchestrator/jobs/{id},status=200"
        );
    }

    #[test]
    fn bad_lines_are_skipped() {
        assert!(summarize("garbage\nname{unterminated 1\n").is_empty());
        assert_eq!(summarize("up 1\n")[0].value, "1");
    }
}
