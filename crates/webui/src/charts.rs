//! Line charts drawn on the server as inline SVG from the orchestrator's timeline: the Cluster
//! page's last hour (or less, from the first sample) and a node's capacity use. No script draws them; the page's live-update
//! script only fetches them again.

use bacalhau_models::Timestamp;
use bacalhau_orchestrator::timeline::{NodeSample, SPAN, Sample};
use maud::{Markup, html};

const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 110.0;
/// Room under the plot for the axis labels.
const AXIS: f64 = 16.0;

/// One line of a chart.
struct Line<'a> {
    name: &'a str,
    /// A CSS class choosing its colour.
    class: &'a str,
    points: Vec<(Timestamp, f64)>,
}

/// The shortest time a chart spans, so the first samples do not fill its width.
const MIN_SPAN: i64 = 60_000_000_000;

/// A chart of `lines` from their first sample (at most an hour back, at least a minute) to
/// `now`; `format` writes a value with its unit.
fn chart(
    id: &str,
    title: &str,
    now: Timestamp,
    lines: &[Line<'_>],
    format: fn(f64) -> String,
) -> Markup {
    let hour = i64::try_from(SPAN.as_nanos()).unwrap_or(i64::MAX);
    let first = lines
        .iter()
        .filter_map(|line| line.points.first().map(|(t, _)| *t))
        .min()
        .unwrap_or(now);
    let span = now.saturating_sub(first).clamp(MIN_SPAN, hour);
    let start = now.saturating_sub(span);
    let span_label = match span / 1_000_000_000 {
        s if s >= 60 => format!("−{} min", s / 60),
        s => format!("−{s} s"),
    };
    let top = lines
        .iter()
        .flat_map(|line| line.points.iter().map(|(_, v)| *v))
        .fold(0.0_f64, f64::max);
    // Headroom above the highest point, and a flat line on an empty chart sits at the bottom.
    let scale = if top > 0.0 { top * 1.1 } else { 1.0 };
    let plot = HEIGHT - AXIS;
    let x = |t: Timestamp| (t.saturating_sub(start)) as f64 / span as f64 * WIDTH;
    let y = |v: f64| plot - (v / scale * plot).clamp(0.0, plot);
    let has_points = lines.iter().any(|line| !line.points.is_empty());
    html! {
        figure.chart id=(id) data-points=(lines.iter().map(|l| l.points.len()).sum::<usize>()) {
            figcaption {
                strong { (title) }
                @for line in lines {
                    " " span class={ "key " (line.class) } {
                        (line.name) ": "
                        (line.points.last().map_or_else(|| "–".to_string(), |(_, v)| format(*v)))
                    }
                }
            }
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(title) preserveAspectRatio="none" {
                line.axis x1="0" y1=(plot) x2=(WIDTH) y2=(plot) {}
                line.grid x1="0" y1="0" x2=(WIDTH) y2="0" {}
                text.label x="2" y="10" { (format(scale)) }
                text.label x="2" y=(HEIGHT - 3.0) { (span_label) }
                text.label x=(WIDTH - 2.0) y=(HEIGHT - 3.0) text-anchor="end" { "now" }
                @for line in lines {
                    @if line.points.len() == 1 {
                        @let (t, v) = line.points[0];
                        circle class=(line.class) cx=(format!("{:.1}", x(t))) cy=(format!("{:.1}", y(v))) r="2" {}
                    } @else if !line.points.is_empty() {
                        polyline class=(line.class) points=(
                            line.points
                                .iter()
                                .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                                .collect::<Vec<_>>()
                                .join(" ")
                        ) {}
                    }
                }
                @if !has_points {
                    text.label x=(WIDTH / 2.0) y=(plot / 2.0) text-anchor="middle" { "no samples yet" }
                }
            }
        }
    }
}

fn count(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn per_second(v: f64) -> String {
    format!("{v:.1}/s")
}

fn millis(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.1} s", v / 1000.0)
    } else {
        format!("{v:.1} ms")
    }
}

fn percent(v: f64) -> String {
    format!("{v:.0}%")
}

/// The Cluster page's charts.
pub fn cluster(samples: &[Sample], now: Timestamp) -> Markup {
    let series = |f: fn(&Sample) -> f64| samples.iter().map(|s| (s.time, f(s))).collect();
    let latency = |f: fn(&Sample) -> Option<std::time::Duration>| {
        samples
            .iter()
            .filter_map(|s| f(s).map(|d| (s.time, d.as_secs_f64() * 1000.0)))
            .collect()
    };
    html! {
        div.charts {
            (chart("chart-completed", "Jobs completed", now, &[Line { name: "rate", class: "a", points: series(|s| s.completed_per_second) }], per_second))
            (chart("chart-queue", "Evaluations queued", now, &[Line { name: "depth", class: "a", points: series(|s| s.queue_depth as f64) }], count))
            (chart("chart-running", "Executions running", now, &[Line { name: "running", class: "a", points: series(|s| s.running as f64) }], count))
            (chart("chart-nodes", "Nodes connected", now, &[Line { name: "nodes", class: "a", points: series(|s| s.nodes_connected as f64) }], count))
            (chart("chart-latency", "Submit → done", now, &[
                Line { name: "p50", class: "a", points: latency(|s| s.p50) },
                Line { name: "p99", class: "b", points: latency(|s| s.p99) },
            ], millis))
        }
    }
}

/// A node's capacity use.
pub fn node(samples: &[NodeSample], now: Timestamp) -> Markup {
    let share = |f: fn(&NodeSample) -> f32| {
        samples
            .iter()
            .map(|s| (s.time, f64::from(f(s)) * 100.0))
            .collect()
    };
    html! {
        div.charts {
            (chart("chart-capacity", "Capacity used", now, &[
                Line { name: "CPU", class: "a", points: share(|s| s.cpu) },
                Line { name: "memory", class: "b", points: share(|s| s.memory) },
            ], percent))
            (chart("chart-node-running", "Executions running", now, &[
                Line { name: "running", class: "a", points: samples.iter().map(|s| (s.time, f64::from(s.running))).collect() },
            ], count))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SECOND: i64 = 1_000_000_000;

    fn sample(t: i64, rate: f64) -> Sample {
        Sample {
            time: t * SECOND,
            completed_per_second: rate,
            queue_depth: 4,
            running: 2,
            nodes_connected: 1,
            p50: Some(Duration::from_millis(12)),
            p99: None,
        }
    }

    #[test]
    fn a_chart_scales_its_line_to_the_highest_point_within_the_hour() {
        let now = 3600 * SECOND;
        let page = cluster(
            &[sample(0, 0.0), sample(1800, 50.0), sample(3600, 100.0)],
            now,
        )
        .into_string();
        // x runs over the hour, y from the bottom of the plot (94) up to 100 / 110 of it.
        assert!(
            page.contains(r#"points="0.0,94.0 180.0,51.3 360.0,8.5""#),
            "{page}"
        );
        assert!(page.contains("rate: 100.0/s"), "{page}");
        assert!(page.contains("p50: 12.0 ms"), "{page}");
        // p99 has no samples: its key says so, and it draws nothing.
        assert!(page.contains("p99: –"), "{page}");
    }

    #[test]
    fn an_empty_timeline_says_so() {
        let page = cluster(&[], 0).into_string();
        assert!(page.contains("no samples yet"), "{page}");
        assert!(!page.contains("polyline"), "{page}");
        let page = node(&[], 0).into_string();
        assert!(page.contains("no samples yet"), "{page}");
    }
}
