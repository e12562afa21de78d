//! Which exports of a component become tools, and their schemas.
//!
//! World-level functions and the functions of exported interfaces are tools;
//! toolchain plumbing (`wasi:*` exports such as `wasi:cli/run`, the
//! componentize-py `exports` interface) is not.

use serde::Serialize;
use serde_json::{Value, json};
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, Type};
use wit_parser::{Function, Resolve, WorldItem, WorldKey};

use crate::schema::{Docs, type_schema};

/// A callable export: where it is and its signature.
pub struct ExportFunc {
    pub interface: Option<String>,
    pub name: String,
    pub index: ComponentExportIndex,
    pub params: Vec<(String, Type)>,
    pub result: Option<Type>,
}

/// What Python sees of an export (serialised to JSON).
#[derive(Serialize)]
pub struct ExportInfo {
    pub interface: Option<String>,
    pub function: String,
    pub description: Option<String>,
    pub input_schema: Value,
    pub output_schema: Option<Value>,
    /// Why this export cannot be a tool, when it cannot.
    pub unsupported: Option<String>,
}

fn is_plumbing(interface: &str) -> bool {
    interface.starts_with("wasi:") || interface == "exports" || interface.starts_with("componentize-py:")
}

/// Lists the callable exports of `component`.
pub fn export_funcs(engine: &Engine, component: &Component) -> Vec<ExportFunc> {
    let mut funcs = Vec::new();
    for (name, item) in component.component_type().exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(f) => {
                let Some(index) = component.get_export_index(None, name) else { continue };
                funcs.push(ExportFunc {
                    interface: None,
                    name: name.to_string(),
                    index,
                    params: f.params().map(|(n, t)| (n.to_string(), t)).collect(),
                    result: f.results().next(),
                });
            }
            ComponentItem::ComponentInstance(inst) if !is_plumbing(name) => {
                let Some(inst_index) = component.get_export_index(None, name) else { continue };
                for (fname, fitem) in inst.exports(engine) {
                    let ComponentItem::ComponentFunc(f) = fitem.ty else { continue };
                    let Some(index) = component.get_export_index(Some(&inst_index), fname) else { continue };
                    funcs.push(ExportFunc {
                        interface: Some(name.to_string()),
                        name: fname.to_string(),
                        index,
                        params: f.params().map(|(n, t)| (n.to_string(), t)).collect(),
                        result: f.results().next(),
                    });
                }
            }
            _ => {}
        }
    }
    funcs
}

/// Schemas and descriptions of `funcs`; docs come from the WIT in `wasm`.
pub fn describe_all(funcs: &[ExportFunc], wasm: &[u8]) -> Vec<ExportInfo> {
    let decoded = decode_wit(wasm);
    let docs = Docs { resolve: decoded.as_ref().map(|(r, _)| r) };
    funcs
        .iter()
        .map(|func| {
            let (wit, iface_docs) = match (&decoded, &func.interface) {
                (Some((r, w)), None) => (world_function(r, *w, &func.name), None),
                (Some((r, w)), Some(iface)) => match world_interface(r, *w, iface) {
                    // The docs on the `export iface;` line, else the interface's own.
                    Some((id, export_docs)) => (
                        r.interfaces[id].functions.get(&func.name),
                        export_docs.or(r.interfaces[id].docs.contents.as_deref()),
                    ),
                    None => (None, None),
                },
                (None, _) => (None, None),
            };
            describe(func, wit, iface_docs, docs)
        })
        .collect()
}

fn describe(func: &ExportFunc, wit: Option<&Function>, iface_docs: Option<&str>, docs: Docs<'_>) -> ExportInfo {
    let wit = wit.filter(|w| w.params.len() == func.params.len());
    let description = wit.and_then(|w| w.docs.contents.as_deref()).or(iface_docs).map(|d| d.trim().to_string());
    let mut info = ExportInfo {
        interface: func.interface.clone(),
        function: func.name.clone(),
        description,
        input_schema: json!({"type": "object", "properties": {}, "additionalProperties": false}),
        output_schema: None,
        unsupported: None,
    };
    if func.name.starts_with('[') {
        // `[constructor]r`, `[method]r.m`, `[static]r.f`: resource plumbing.
        info.unsupported = Some("resource constructors and methods cannot be called as tools".into());
        return info;
    }
    let mut props = serde_json::Map::new();
    let mut required = Vec::new();
    for (i, (pname, pty)) in func.params.iter().enumerate() {
        let wp = wit.map(|w| &w.params[i].ty);
        match type_schema(pty, wp, docs) {
            Ok(s) => {
                props.insert(pname.clone(), s);
            }
            Err(e) => {
                info.unsupported = Some(format!("parameter {pname}: {}", e.0));
                return info;
            }
        }
        if !crate::values::is_nullable(pty) {
            required.push(Value::String(pname.clone()));
        }
    }
    info.input_schema = json!({
        "type": "object", "properties": props, "required": required, "additionalProperties": false,
    });
    if let Some(rt) = &func.result {
        match type_schema(rt, wit.and_then(|w| w.result.as_ref()), docs) {
            Ok(s) => {
                info.output_schema = Some(json!({
                    "type": "object", "properties": {"result": s}, "required": ["result"],
                }));
            }
            Err(e) => info.unsupported = Some(format!("result: {}", e.0)),
        }
    }
    info
}

/// The component's own WIT, with docs from its `package-docs` section.
fn decode_wit(wasm: &[u8]) -> Option<(Resolve, wit_parser::WorldId)> {
    match wit_parser::decoding::decode(wasm).ok()? {
        wit_parser::decoding::DecodedWasm::Component(resolve, world) => Some((resolve, world)),
        wit_parser::decoding::DecodedWasm::WitPackage(..) => None,
    }
}

fn world_function<'a>(resolve: &'a Resolve, world: wit_parser::WorldId, name: &str) -> Option<&'a Function> {
    resolve.worlds[world].exports.iter().find_map(|(key, item)| match (key, item) {
        (WorldKey::Name(n), WorldItem::Function(f)) if n == name => Some(f),
        _ => None,
    })
}

fn world_interface<'a>(
    resolve: &'a Resolve,
    world: wit_parser::WorldId,
    name: &str,
) -> Option<(wit_parser::InterfaceId, Option<&'a str>)> {
    resolve.worlds[world].exports.iter().find_map(|(key, item)| match (key, item) {
        (WorldKey::Interface(id), WorldItem::Interface { docs, .. }) if resolve.id_of(*id).as_deref() == Some(name) => {
            Some((*id, docs.contents.as_deref()))
        }
        (WorldKey::Name(n), WorldItem::Interface { id, docs, .. }) if n == name => {
            Some((*id, docs.contents.as_deref()))
        }
        _ => None,
    })
}
