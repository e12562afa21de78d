//! WIT types -> JSON Schema (draft 2020-12), the exact twin of `values.rs`.
//!
//! The structure comes from Wasmtime's runtime types, which are what values
//! are checked against. When the component carries WIT docs, the decoded WIT
//! type is walked alongside to add titles and descriptions; if the two ever
//! disagree in shape the docs are dropped, never the schema.

use serde_json::{Value, json};
use wasmtime::component::Type;
use wit_parser::{Resolve, Type as WitType, TypeDefKind};

use crate::values::{F32_LIMIT, NON_FINITE, is_nullable, type_name};

/// A type that cannot be expressed as JSON (resources, streams, futures).
#[derive(Debug)]
pub struct Unsupported(pub String);

type Result<T> = std::result::Result<T, Unsupported>;

/// Where docs come from: the decoded WIT of the component, if any.
#[derive(Clone, Copy)]
pub struct Docs<'a> {
    pub resolve: Option<&'a Resolve>,
}

impl<'a> Docs<'a> {
    /// Follows type aliases to the definition that carries the structure,
    /// collecting the first name and doc comment found on the way.
    fn resolve_def(&self, wit: Option<&WitType>) -> (Option<&'a TypeDefKind>, Option<String>, Option<String>) {
        let (Some(resolve), Some(mut ty)) = (self.resolve, wit.copied()) else {
            return (None, None, None);
        };
        let (mut name, mut docs) = (None, None);
        loop {
            let WitType::Id(id) = ty else { return (None, name, docs) };
            let def = &resolve.types[id];
            if name.is_none() {
                name = def.name.clone();
            }
            if docs.is_none() {
                docs = def.docs.contents.clone();
            }
            match &def.kind {
                TypeDefKind::Type(inner) => ty = *inner,
                kind => return (Some(kind), name, docs),
            }
        }
    }
}

/// The JSON Schema of values of `ty`.
pub fn type_schema(ty: &Type, wit: Option<&WitType>, docs: Docs<'_>) -> Result<Value> {
    let (def, name, description) = docs.resolve_def(wit);
    let mut schema = structure(ty, def, docs)?;
    if let Value::Object(obj) = &mut schema {
        if let Some(name) = name {
            obj.insert("title".into(), Value::String(name));
        }
        if let Some(d) = description {
            // Keep what the structure already says (enum/flag case docs).
            let text = match obj.get("description").and_then(Value::as_str) {
                Some(cases) => format!("{}\n{cases}", d.trim()),
                None => d.trim().to_string(),
            };
            obj.insert("description".into(), Value::String(text));
        }
    }
    Ok(schema)
}

fn int_schema(min: i128, max: i128) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": max})
}

fn structure(ty: &Type, def: Option<&TypeDefKind>, docs: Docs<'_>) -> Result<Value> {
    Ok(match ty {
        Type::Bool => json!({"type": "boolean"}),
        Type::S8 => int_schema(i8::MIN.into(), i8::MAX.into()),
        Type::U8 => int_schema(0, u8::MAX.into()),
        Type::S16 => int_schema(i16::MIN.into(), i16::MAX.into()),
        Type::U16 => int_schema(0, u16::MAX.into()),
        Type::S32 => int_schema(i32::MIN.into(), i32::MAX.into()),
        Type::U32 => int_schema(0, u32::MAX.into()),
        Type::S64 => int_schema(i64::MIN.into(), i64::MAX.into()),
        Type::U64 => int_schema(0, u64::MAX.into()),
        Type::Float32 => json!({
            "anyOf": [
                {"type": "number", "exclusiveMinimum": -F32_LIMIT, "exclusiveMaximum": F32_LIMIT},
                {"type": "string", "enum": NON_FINITE},
            ],
            "format": "f32",
        }),
        Type::Float64 => json!({
            "anyOf": [{"type": "number"}, {"type": "string", "enum": NON_FINITE}],
            "format": "f64",
        }),
        Type::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
        Type::String => json!({"type": "string"}),
        Type::List(list) => {
            let elem = match def {
                Some(TypeDefKind::List(t)) => Some(t),
                _ => None,
            };
            json!({"type": "array", "items": type_schema(&list.ty(), elem, docs)?})
        }
        Type::FixedLengthList(list) => {
            let elem = match def {
                Some(TypeDefKind::FixedLengthList(t, _)) => Some(t),
                _ => None,
            };
            json!({
                "type": "array",
                "items": type_schema(&list.ty(), elem, docs)?,
                "minItems": list.len(),
                "maxItems": list.len(),
            })
        }
        Type::Map(map) => {
            let (k, v) = match def {
                Some(TypeDefKind::Map(k, v)) => (Some(k), Some(v)),
                _ => (None, None),
            };
            json!({
                "type": "array",
                "items": {
                    "type": "array",
                    "prefixItems": [type_schema(&map.key(), k, docs)?, type_schema(&map.value(), v, docs)?],
                    "minItems": 2, "maxItems": 2, "items": false,
                },
            })
        }
        Type::Record(record) => {
            let wit_fields = match def {
                Some(TypeDefKind::Record(r)) if r.fields.len() == record.fields().len() => Some(&r.fields),
                _ => None,
            };
            let mut props = serde_json::Map::new();
            let mut required = Vec::new();
            for (i, f) in record.fields().enumerate() {
                let wf = wit_fields.map(|w| &w[i]).filter(|w| w.name == f.name);
                let mut s = type_schema(&f.ty, wf.map(|w| &w.ty), docs)?;
                if let Some(d) = wf.and_then(|w| w.docs.contents.as_deref()) {
                    s["description"] = Value::String(d.trim().to_string());
                }
                if !is_nullable(&f.ty) {
                    required.push(Value::String(f.name.to_string()));
                }
                props.insert(f.name.to_string(), s);
            }
            json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
        }
        Type::Tuple(tuple) => {
            let wit_types = match def {
                Some(TypeDefKind::Tuple(t)) if t.types.len() == tuple.types().len() => Some(&t.types),
                _ => None,
            };
            let items = tuple
                .types()
                .enumerate()
                .map(|(i, t)| type_schema(&t, wit_types.map(|w| &w[i]), docs))
                .collect::<Result<Vec<_>>>()?;
            let n = items.len();
            json!({"type": "array", "prefixItems": items, "minItems": n, "maxItems": n, "items": false})
        }
        Type::Variant(variant) => {
            let wit_cases = match def {
                Some(TypeDefKind::Variant(v)) if v.cases.len() == variant.cases().len() => Some(&v.cases),
                _ => None,
            };
            let mut one_of = Vec::new();
            for (i, case) in variant.cases().enumerate() {
                let wc = wit_cases.map(|w| &w[i]).filter(|w| w.name == case.name);
                let payload = match &case.ty {
                    Some(t) => type_schema(t, wc.and_then(|w| w.ty.as_ref()), docs)?,
                    None => json!({"type": "null"}),
                };
                let mut branch = single_key(case.name, payload);
                if let Some(d) = wc.and_then(|w| w.docs.contents.as_deref()) {
                    branch["description"] = Value::String(d.trim().to_string());
                }
                one_of.push(branch);
            }
            json!({"oneOf": one_of})
        }
        Type::Enum(en) => {
            let mut s = json!({"type": "string", "enum": en.names().collect::<Vec<_>>()});
            if let Some(TypeDefKind::Enum(e)) = def {
                let lines: Vec<String> = e
                    .cases
                    .iter()
                    .filter_map(|c| c.docs.contents.as_deref().map(|d| format!("{}: {}", c.name, d.trim())))
                    .collect();
                if !lines.is_empty() {
                    s["description"] = Value::String(lines.join("\n"));
                }
            }
            s
        }
        Type::Flags(flags) => {
            let mut s = json!({
                "type": "array",
                "items": {"type": "string", "enum": flags.names().collect::<Vec<_>>()},
                "uniqueItems": true,
            });
            if let Some(TypeDefKind::Flags(f)) = def {
                let lines: Vec<String> = f
                    .flags
                    .iter()
                    .filter_map(|c| c.docs.contents.as_deref().map(|d| format!("{}: {}", c.name, d.trim())))
                    .collect();
                if !lines.is_empty() {
                    s["description"] = Value::String(lines.join("\n"));
                }
            }
            s
        }
        Type::Option(opt) => {
            let inner_ty = opt.ty();
            let wit_inner = match def {
                Some(TypeDefKind::Option(t)) => Some(t),
                _ => None,
            };
            let inner = type_schema(&inner_ty, wit_inner, docs)?;
            if is_nullable(&inner_ty) {
                json!({"anyOf": [{"type": "null"}, single_key("some", inner)]})
            } else {
                json!({"anyOf": [{"type": "null"}, inner]})
            }
        }
        Type::Result(result) => {
            let (wok, werr) = match def {
                Some(TypeDefKind::Result(r)) => (r.ok.as_ref(), r.err.as_ref()),
                _ => (None, None),
            };
            let arm = |t: Option<Type>, w: Option<&WitType>| -> Result<Value> {
                match t {
                    Some(t) => type_schema(&t, w, docs),
                    None => Ok(json!({"type": "null"})),
                }
            };
            json!({"oneOf": [
                single_key("ok", arm(result.ok(), wok)?),
                single_key("err", arm(result.err(), werr)?),
            ]})
        }
        other => return Err(Unsupported(format!("{} values cannot be passed as JSON", type_name(other)))),
    })
}

fn single_key(name: &str, payload: Value) -> Value {
    json!({
        "type": "object",
        "properties": {name: payload},
        "required": [name],
        "additionalProperties": false,
    })
}
