//! `wassette:mcp/host`: what a component may ask of the server during a
//! tool call — progress, log messages, questions to the user (elicitation)
//! and to the model (sampling). The engine bounds each use and hands it to
//! the embedder's callback as JSON; what the callback does (an MCP
//! notification, a request to the client) is the embedder's business.

use std::sync::Arc;

use serde_json::json;
use wasmtime::StoreContextMut;
use wasmtime::component::{ComponentType, Lift, Linker, Lower};

use crate::sandbox::Host;

/// The interface; imports of any 0.1.x version link to it.
pub const INTERFACE: &str = "wassette:mcp/host@0.1.0";
/// Host calls one tool call may make (a guest looping on `log` stops here).
pub const MAX_CALLS: u32 = 10_000;
/// Largest string a guest may pass (a message, a schema, a request).
pub const MAX_TEXT: usize = 256 * 1024;
/// Questions (elicit, sample) one tool call may ask: a guest asking in a
/// loop would otherwise keep the user answering. The next one stops the call.
pub const MAX_QUESTIONS: u32 = 16;

/// Where host calls go: `(kind, payload JSON)` to the answer's JSON (for
/// `elicit` and `sample`), or why there is none.
pub type Callback = Arc<dyn Fn(&str, &str) -> Result<Option<String>, String> + Send + Sync>;

/// A call's use of the interface: the callback and how many calls so far.
#[derive(Default)]
pub struct McpHost {
    pub callback: Option<Callback>,
    pub calls: u32,
    pub questions: u32,
}

// Made by the guest (lifted), never by us: hence no constructor calls.
#[allow(dead_code)]
#[derive(ComponentType, Lift, Clone, Copy)]
#[component(enum)]
#[repr(u8)]
enum Level {
    #[component(name = "debug")]
    Debug,
    #[component(name = "info")]
    Info,
    #[component(name = "notice")]
    Notice,
    #[component(name = "warning")]
    Warning,
    #[component(name = "error")]
    Error,
    #[component(name = "critical")]
    Critical,
    #[component(name = "alert")]
    Alert,
    #[component(name = "emergency")]
    Emergency,
}

impl Level {
    fn name(self) -> &'static str {
        ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"][self as usize]
    }
}

#[derive(ComponentType, Lower, Clone, Copy)]
#[component(enum)]
#[repr(u8)]
enum Action {
    #[component(name = "accept")]
    Accept,
    #[component(name = "decline")]
    Decline,
    #[component(name = "cancel")]
    Cancel,
}

#[derive(ComponentType, Lower)]
#[component(record)]
struct Answer {
    action: Action,
    #[component(name = "content-json")]
    content_json: Option<String>,
}

/// Counts the call and checks the texts; Err: why the guest is refused.
fn admit(host: &mut McpHost, texts: &[&str]) -> Result<(), String> {
    host.calls += 1;
    if host.calls > MAX_CALLS {
        return Err(format!("over {MAX_CALLS} calls of {INTERFACE} in one tool call"));
    }
    if let Some(t) = texts.iter().find(|t| t.len() > MAX_TEXT) {
        return Err(format!("a text of {} bytes, over the {MAX_TEXT}-byte limit of {INTERFACE}", t.len()));
    }
    Ok(())
}

/// Hands a notification (progress, log) to the callback; nothing comes back.
fn notify(host: &mut McpHost, kind: &str, payload: serde_json::Value, texts: &[&str]) -> wasmtime::Result<()> {
    if let Err(why) = admit(host, texts) {
        // A flood is the guest's fault: it traps, the server goes on.
        wasmtime::bail!("{why}");
    }
    if let Some(cb) = &host.callback {
        // A notification that cannot be sent is not the guest's problem.
        let _ = cb(kind, &payload.to_string());
    }
    Ok(())
}

/// Asks through the callback: its answer (JSON), or why not (Err: the
/// guest is told; the outer Err: over MAX_QUESTIONS, the call stops).
fn ask(
    host: &mut McpHost,
    kind: &str,
    payload: serde_json::Value,
    texts: &[&str],
) -> wasmtime::Result<Result<String, String>> {
    host.questions += 1;
    if host.questions > MAX_QUESTIONS {
        wasmtime::bail!("the component asked more than {MAX_QUESTIONS} questions (elicit, sample) in one tool call");
    }
    Ok(answer(host, kind, payload, texts))
}

fn answer(host: &mut McpHost, kind: &str, payload: serde_json::Value, texts: &[&str]) -> Result<String, String> {
    admit(host, texts)?;
    let Some(cb) = &host.callback else {
        return Err("no MCP client to ask: the tool runs outside a client's call".into());
    };
    cb(kind, &payload.to_string())?.ok_or_else(|| "the client gave no answer".into())
}

/// Whether `component` imports the questions of the interface (elicit,
/// sample), whose answers come from the client.
pub fn asks_client(engine: &wasmtime::Engine, component: &wasmtime::component::Component) -> bool {
    use wasmtime::component::types::ComponentItem;
    component.component_type().imports(engine).any(|(name, item)| {
        name.starts_with("wassette:mcp/host@0.1.")
            && matches!(&item.ty, ComponentItem::ComponentInstance(inst)
                if inst.exports(engine).any(|(f, _)| f == "elicit" || f == "sample"))
    })
}

pub fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    let mut inst = linker.instance(INTERFACE)?;
    inst.func_wrap(
        "progress",
        |mut store: StoreContextMut<'_, Host>, (done, total, message): (f64, Option<f64>, Option<String>)| {
            let text = message.as_deref().unwrap_or("");
            let payload = json!({"done": done, "total": total, "message": message});
            notify(&mut store.data_mut().mcp, "progress", payload, &[text])
        },
    )?;
    inst.func_wrap(
        "log",
        |mut store: StoreContextMut<'_, Host>, (level, logger, data): (Level, Option<String>, String)| {
            let payload = json!({"level": level.name(), "logger": logger, "data_json": data});
            notify(&mut store.data_mut().mcp, "log", payload, &[&data, logger.as_deref().unwrap_or("")])
        },
    )?;
    inst.func_wrap("elicit", |mut store: StoreContextMut<'_, Host>, (message, schema): (String, String)| {
        let payload = json!({"message": message, "requested_schema_json": schema});
        let answer = ask(&mut store.data_mut().mcp, "elicit", payload, &[&message, &schema])?.and_then(|text| {
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("bad answer: {e}"))?;
            let action = match v["action"].as_str() {
                Some("accept") => Action::Accept,
                Some("decline") => Action::Decline,
                _ => Action::Cancel,
            };
            let content_json = v.get("content").filter(|c| !c.is_null()).map(|c| c.to_string());
            Ok(Answer { action, content_json })
        });
        Ok((answer,))
    })?;
    inst.func_wrap("sample", |mut store: StoreContextMut<'_, Host>, (request,): (String,)| {
        let payload = json!({"request_json": request});
        Ok((ask(&mut store.data_mut().mcp, "sample", payload, &[&request])?,))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_texts_are_bounded() {
        let mut host = McpHost::default();
        assert!(admit(&mut host, &["short"]).is_ok());
        let big = "x".repeat(MAX_TEXT + 1);
        assert!(admit(&mut host, &[&big]).unwrap_err().contains("over the 262144-byte limit"));
        host.calls = MAX_CALLS;
        assert!(admit(&mut host, &[]).unwrap_err().contains("over 10000 calls"));
    }

    #[test]
    fn asking_without_a_client_says_so() {
        let mut host = McpHost::default();
        let err = ask(&mut host, "elicit", json!({}), &[]).unwrap().unwrap_err();
        assert!(err.contains("no MCP client to ask"));
        let cb: Callback = Arc::new(|kind, _| Ok(Some(format!("\"{kind}\""))));
        host.callback = Some(cb);
        assert_eq!(ask(&mut host, "sample", json!({}), &[]).unwrap().unwrap(), "\"sample\"");
    }

    #[test]
    fn questions_are_bounded_per_call() {
        let cb: Callback = Arc::new(|_, _| Ok(Some("{}".into())));
        let mut host = McpHost { callback: Some(cb), ..Default::default() };
        for _ in 0..MAX_QUESTIONS {
            assert!(ask(&mut host, "elicit", json!({}), &[]).unwrap().is_ok());
        }
        let stopped = ask(&mut host, "elicit", json!({}), &[]).unwrap_err();
        assert!(stopped.to_string().contains("more than 16 questions"), "{stopped}");
    }

    #[test]
    fn levels_have_their_mcp_names() {
        assert_eq!(Level::Emergency.name(), "emergency");
        assert_eq!(Level::Debug.name(), "debug");
    }
}
