//! A job's lineage as an inline SVG graph, drawn on the server: data flows left to right, from
//! the inputs (and the jobs that produced them) through the job to the jobs that read its
//! result. Each job is a link to its page.

use bacalhau_models::lineage::{LineageInput, LineageNode};
use maud::{Markup, html};

const BOX_WIDTH: f64 = 200.0;
const BOX_HEIGHT: f64 = 34.0;
const COLUMN: f64 = 240.0;
const ROW: f64 = 46.0;
/// Characters of a label that fit in a box.
const LABEL_CHARS: usize = 30;

/// A box of the graph: a job or a piece of data.
struct Vertex {
    column: i32,
    row: usize,
    label: String,
    detail: String,
    /// The job's page, for job boxes.
    href: Option<String>,
    /// Whether this is the job the page is about.
    current: bool,
}

#[derive(Default)]
struct Graph {
    vertices: Vec<Vertex>,
    /// (from, to): data flows from `from` to `to`.
    edges: Vec<(usize, usize)>,
    rows: std::collections::BTreeMap<i32, usize>,
}

impl Graph {
    fn add(&mut self, column: i32, label: String, detail: String, href: Option<String>) -> usize {
        let row = self.rows.entry(column).or_default();
        self.vertices.push(Vertex {
            column,
            row: *row,
            label,
            detail,
            href,
            current: false,
        });
        *row += 1;
        self.vertices.len() - 1
    }

    fn job(&mut self, column: i32, node: &LineageNode) -> usize {
        // Unnamed jobs are named by their ID: the short form fits the box.
        let label = if node.name.is_empty() || node.name == node.job_id.as_str() {
            bacalhau_models::ids::short_id(node.job_id.as_str()).to_string()
        } else {
            node.name.clone()
        };
        let detail = match &node.result {
            Some(result) => format!("{} → {result}", node.state),
            None => node.state.clone(),
        };
        self.add(
            column,
            label,
            detail,
            Some(format!("/ui/jobs/{}", node.job_id)),
        )
    }

    fn data(&mut self, column: i32, input: &LineageInput) -> usize {
        let identity = input
            .identity
            .as_ref()
            .map(|i| i.to_string())
            .unwrap_or_else(|| input.place.clone());
        let label = if input.place.is_empty() {
            format!("{} {}", input.source_type, input.target)
        } else {
            input.place.clone()
        };
        self.add(column, label, identity, None)
    }

    /// The inputs of the job at `job`, and the jobs that produced them, further left.
    fn upstream(&mut self, job: usize, column: i32, inputs: &[LineageInput]) {
        for input in inputs {
            let data = self.data(column - 1, input);
            self.edges.push((data, job));
            for producer in &input.produced_by {
                let at = self.job(column - 2, producer);
                self.edges.push((at, data));
                self.upstream(at, column - 2, &producer.inputs);
            }
        }
    }

    /// The result of the job at `job` and the jobs that read it, further right.
    fn downstream(&mut self, job: usize, column: i32, node: &LineageNode) {
        let Some(result) = &node.result else {
            return;
        };
        let data = self.add(column + 1, "result".into(), result.to_string(), None);
        self.edges.push((job, data));
        for consumer in &node.consumed_by {
            let at = self.job(column + 2, consumer);
            self.edges.push((data, at));
            self.downstream(at, column + 2, consumer);
        }
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= LABEL_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(LABEL_CHARS - 1).collect();
    format!("{head}…")
}

/// The lineage section of a job's page.
pub fn section(tree: &LineageNode) -> Markup {
    let mut graph = Graph::default();
    let root = graph.job(0, tree);
    graph.vertices[root].current = true;
    graph.upstream(root, 0, &tree.inputs);
    graph.downstream(root, 0, tree);
    let first = graph.vertices.iter().map(|v| v.column).min().unwrap_or(0);
    let last = graph.vertices.iter().map(|v| v.column).max().unwrap_or(0);
    let rows = graph.rows.values().copied().max().unwrap_or(1);
    let width = f64::from(last - first) * COLUMN + BOX_WIDTH + 2.0;
    let height = rows as f64 * ROW + 2.0;
    let place = |v: &Vertex| {
        (
            f64::from(v.column - first) * COLUMN + 1.0,
            v.row as f64 * ROW + 1.0,
        )
    };
    let jobs = graph.vertices.iter().filter(|v| v.href.is_some()).count();
    html! {
        section #lineage {
            h2 { "Lineage" }
            p.muted { "Data flows left to right: inputs and the jobs that produced them, this job, the jobs that read its result. Linked by content (CIDs, SHA-256)." }
            div.scroll {
                svg.lineage width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) } role="img" aria-label="Lineage graph" data-jobs=(jobs) {
                    @for (from, to) in &graph.edges {
                        @let (x1, y1) = place(&graph.vertices[*from]);
                        @let (x2, y2) = place(&graph.vertices[*to]);
                        line.edge x1=(x1 + BOX_WIDTH) y1=(y1 + BOX_HEIGHT / 2.0) x2=(x2) y2=(y2 + BOX_HEIGHT / 2.0) {}
                    }
                    @for vertex in &graph.vertices {
                        @let (x, y) = place(vertex);
                        @let class = if vertex.current { "node current" } else if vertex.href.is_some() { "node job" } else { "node data" };
                        @let body = html! {
                            rect class=(class) x=(x) y=(y) width=(BOX_WIDTH) height=(BOX_HEIGHT) rx="4" {}
                            text x=(x + 6.0) y=(y + 14.0) { (shorten(&vertex.label)) }
                            text.muted x=(x + 6.0) y=(y + 28.0) { title { (vertex.detail) } (shorten(&vertex.detail)) }
                        };
                        @if let Some(href) = &vertex.href {
                            a.lineage-job href=(href) { (body) }
                        } @else {
                            g { (body) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bacalhau_models::JobId;
    use bacalhau_models::content::Identity;

    fn job(id: &str) -> LineageNode {
        LineageNode {
            job_id: JobId::from(id),
            name: id.into(),
            state: "Completed".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_chain_draws_every_job_with_a_link() {
        let mut first = job("j-1");
        first.inputs = vec![LineageInput {
            target: "/in".into(),
            source_type: "urlDownload".into(),
            place: "url:http://h/x".into(),
            identity: Some(Identity::sha256(&[1; 32])),
            produced_by: Vec::new(),
        }];
        let mut middle = job("j-2");
        middle.inputs = vec![LineageInput {
            target: "/in".into(),
            source_type: "ipfs".into(),
            identity: Some(Identity::cid("bafy1")),
            produced_by: vec![first],
            ..Default::default()
        }];
        middle.result = Some(Identity::cid("bafy2"));
        middle.consumed_by = vec![job("j-3")];
        let html = section(&middle).into_string();
        for id in ["j-1", "j-2", "j-3"] {
            assert!(html.contains(&format!("href=\"/ui/jobs/{id}\"")), "{html}");
        }
        assert!(html.contains("data-jobs=\"3\""), "{html}");
        assert!(html.contains("url:http://h/x"), "{html}");
    }
}
