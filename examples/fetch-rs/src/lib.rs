//! Exports of world example:fetch-rs/fetch (wit/fetch.wit).
//!
//! The request goes out through wasi:http's outgoing-handler, which the
//! sandbox routes through its network gate: a host the policy does not list
//! is refused before anything is sent, and the server adds the command that
//! grants it to the error.

wit_bindgen::generate!({ world: "fetch", path: "wit" });

use std::io::Read;
use std::rc::Rc;

use htmd::element_handler::{HandlerResult, Handlers};
use htmd::options::{BulletListMarker, HrStyle, Options};
use htmd::{Element, HtmlToMarkdown, Node};
use markup5ever_rcdom::NodeData;
use url::{Position, Url};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

/// Bodies larger than this are refused rather than held in memory.
const MAX_BODY: u64 = 16 * 1024 * 1024;
/// Redirects followed; each hop is a request of its own, gated like the first.
const MAX_REDIRECTS: usize = 5;

struct Fetch;

impl Guest for Fetch {
    fn fetch(url: String, max_chars: Option<u32>) -> Result<String, String> {
        let mut target = Url::parse(&url).map_err(|_| format!("not a valid URL: {url:?}"))?;
        let mut hops = 0;
        let (kind, body) = loop {
            if !matches!(target.scheme(), "http" | "https") {
                return Err(format!("only http and https URLs can be fetched, not {}:", target.scheme()));
            }
            match get(&target)? {
                Fetched::Redirect(to) if hops < MAX_REDIRECTS => {
                    hops += 1;
                    target = target.join(&to).map_err(|_| format!("{target}: bad redirect to {to:?}"))?;
                }
                Fetched::Redirect(_) => return Err(format!("{url}: more than {MAX_REDIRECTS} redirects")),
                Fetched::Page { kind, body } => break (kind, body),
            }
        };
        let text = if kind.contains("html") {
            html_to_markdown(&body, &target)
        } else if kind.contains("json") {
            serde_json::from_str::<serde_json::Value>(&body)
                .and_then(|value| serde_json::to_string_pretty(&value))
                .unwrap_or(body)
        } else if kind.starts_with("text/") || kind.contains("xml") {
            body
        } else {
            return Err(format!("{target}: cannot show content of type {kind}"));
        };
        Ok(truncate(text, max_chars))
    }
}

export!(Fetch);

enum Fetched {
    Redirect(String),
    /// The content type (lowercase) and the body.
    Page {
        kind: String,
        body: String,
    },
}

/// One GET through wasi:http, blocking on its pollables.
fn get(target: &Url) -> Result<Fetched, String> {
    let origin = target.origin().ascii_serialization();
    let failed = |e: ErrorCode| format!("cannot fetch {origin}: {}", describe(&e));
    let invalid = |_| format!("not a valid URL: {target}");
    let headers = Fields::from_list(&[("accept".to_owned(), b"text/html, application/json, text/*".to_vec())])
        .map_err(|e| format!("{e:?}"))?;
    let request = OutgoingRequest::new(headers);
    request.set_method(&Method::Get).map_err(invalid)?;
    let scheme = if target.scheme() == "https" { Scheme::Https } else { Scheme::Http };
    request.set_scheme(Some(&scheme)).map_err(invalid)?;
    request.set_authority(Some(&target[Position::BeforeHost..Position::AfterPort])).map_err(invalid)?;
    request.set_path_with_query(Some(&target[Position::BeforePath..Position::AfterQuery])).map_err(invalid)?;
    // A GET has no body: finish it at once, so the request is complete.
    let body = request.body().expect("a new request has its body");
    OutgoingBody::finish(body, None).map_err(failed)?;

    let pending = outgoing_handler::handle(request, None).map_err(failed)?;
    pending.subscribe().block();
    let response = pending.get().expect("ready after block").expect("taken once").map_err(failed)?;
    let status = response.status();
    let header = |name: &str| response.headers().get(name).first().map(|v| String::from_utf8_lossy(v).into_owned());
    if matches!(status, 301 | 302 | 303 | 307 | 308)
        && let Some(location) = header("location")
    {
        return Ok(Fetched::Redirect(location));
    }
    if !(200..300).contains(&status) {
        return Err(format!("{target}: HTTP {status}"));
    }
    let kind = header("content-type").unwrap_or_else(|| "text/plain".to_owned()).to_ascii_lowercase();
    let incoming = response.consume().expect("consumed once");
    let mut bytes = Vec::new();
    {
        // The stream is a child of the body: it must go first.
        let mut stream = incoming.stream().expect("read once");
        stream.by_ref().take(MAX_BODY + 1).read_to_end(&mut bytes).map_err(|e| format!("{target}: {e}"))?;
    }
    if bytes.len() as u64 > MAX_BODY {
        return Err(format!("{target}: larger than {MAX_BODY} bytes"));
    }
    Ok(Fetched::Page { kind, body: String::from_utf8_lossy(&bytes).into_owned() })
}

fn describe(error: &ErrorCode) -> String {
    match error {
        ErrorCode::HttpRequestDenied => "access denied".to_owned(),
        ErrorCode::DnsError(_) | ErrorCode::DnsTimeout => "the name does not resolve".to_owned(),
        ErrorCode::ConnectionRefused => "connection refused".to_owned(),
        ErrorCode::ConnectionTimeout => "connection timed out".to_owned(),
        other => format!("{other:?}"),
    }
}

/// Markdown for an HTML page: scripts, styles and the head dropped, links
/// and images made absolute, the page's title on top unless the page has a
/// top heading of its own.
fn html_to_markdown(html: &str, base: &Url) -> String {
    let options = Options {
        hr_style: HrStyle::Dashes,
        bullet_list_marker: BulletListMarker::Dash,
        ul_bullet_spacing: 1,
        ol_number_spacing: 1,
        ..Options::default()
    };
    let converter = HtmlToMarkdown::builder()
        .options(options)
        .skip_tags(vec!["head", "script", "style", "noscript", "template", "svg"])
        .add_handler(vec!["pre"], pre_block)
        .build();
    let Ok(tree) = converter.html_to_tree(html) else {
        return html.to_owned();
    };
    let mut title = None;
    absolutize(&tree, base, &mut title);
    let body = converter.tree_to_markdown(&tree);
    match title {
        Some(title) if !title.is_empty() && !body.lines().any(|l| l.starts_with("# ")) => {
            format!("# {title}\n\n{body}")
        }
        _ => body,
    }
}

/// Rewrites `href` and `src` against `base` and picks up the first `<title>`.
fn absolutize(node: &Rc<Node>, base: &Url, title: &mut Option<String>) {
    if let NodeData::Element { name, attrs, .. } = &node.data {
        if title.is_none() && &*name.local == "title" {
            let mut text = String::new();
            collect_text(node, &mut text);
            *title = Some(text.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        for attr in attrs.borrow_mut().iter_mut() {
            if matches!(&*attr.name.local, "href" | "src")
                && let Ok(absolute) = base.join(&attr.value)
            {
                attr.value = absolute.as_str().into();
            }
        }
    }
    for child in node.children.borrow().iter() {
        absolutize(child, base, title);
    }
}

/// A `<pre>` without a `<code>` inside is a code block too (htmd only fences
/// `<pre><code>`).
fn pre_block(handlers: &dyn Handlers, element: Element) -> Option<HandlerResult> {
    let code_inside = element
        .node
        .children
        .borrow()
        .iter()
        .any(|c| matches!(&c.data, NodeData::Element { name, .. } if &*name.local == "code"));
    if code_inside {
        return handlers.fallback(element);
    }
    let mut text = String::new();
    collect_text(element.node, &mut text);
    Some(format!("\n\n```\n{}\n```\n\n", text.trim_matches('\n')).into())
}

fn collect_text(node: &Rc<Node>, out: &mut String) {
    if let NodeData::Text { contents } = &node.data {
        out.push_str(&contents.borrow());
    }
    for child in node.children.borrow().iter() {
        collect_text(child, out);
    }
}

/// The first `max_chars` characters, and how many were left out.
fn truncate(text: String, max_chars: Option<u32>) -> String {
    let Some(limit) = max_chars.map(|n| n as usize) else {
        return text;
    };
    let total = text.chars().count();
    if total <= limit {
        return text;
    }
    let kept: String = text.chars().take(limit).collect();
    format!("{kept}\n\n[... {} more characters]", total - limit)
}
