//! JSON <-> component values.
//!
//! The accepted JSON encoding is exactly the one `schema.rs` advertises: every
//! rule here has a twin there. Errors name the path of the offending value
//! (`args.req.times: 4294967296 is out of range for u32`).

use serde_json::{Map, Number, Value};
use wasmtime::component::{Type, Val};

/// A JSON argument that does not fit the WIT type, with the path to it.
#[derive(Debug)]
pub struct ArgError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

type Result<T> = std::result::Result<T, ArgError>;

/// Names of non-finite floats, which JSON numbers cannot carry.
pub const NON_FINITE: [&str; 3] = ["NaN", "Infinity", "-Infinity"];

/// Whether the JSON encoding of `ty` can be `null` (only `option` can); an
/// `option` of such a type wraps its `some` value as `{"some": v}`.
pub fn is_nullable(ty: &Type) -> bool {
    matches!(ty, Type::Option(_))
}

/// Converts the tool arguments object into the function's parameter values.
pub fn args_to_vals(params: &[(String, Type)], args: &Value) -> Result<Vec<Val>> {
    let path = "args".to_string();
    let obj = match args {
        Value::Object(obj) => obj,
        Value::Null if params.is_empty() => return Ok(Vec::new()),
        other => return Err(err(&path, format!("expected an object, got {}", describe(other)))),
    };
    check_unknown_keys(&path, obj, &params.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>())?;
    params.iter().map(|(name, ty)| field_to_val(&path, obj, name, ty)).collect()
}

fn field_to_val(parent: &str, obj: &Map<String, Value>, name: &str, ty: &Type) -> Result<Val> {
    let path = format!("{parent}.{name}");
    match obj.get(name) {
        Some(v) => json_to_val(ty, v, &path),
        // An omitted option is `none`; anything else is required.
        None if is_nullable(ty) => Ok(Val::Option(None)),
        None => Err(err(parent, format!("missing required field \"{name}\""))),
    }
}

fn check_unknown_keys(path: &str, obj: &Map<String, Value>, expected: &[&str]) -> Result<()> {
    for key in obj.keys() {
        if !expected.contains(&key.as_str()) {
            let hint = if expected.is_empty() {
                "no fields are expected".to_string()
            } else {
                format!("expected one of: {}", expected.join(", "))
            };
            return Err(err(path, format!("unknown field \"{key}\" ({hint})")));
        }
    }
    Ok(())
}

fn err(path: &str, message: impl Into<String>) -> ArgError {
    ArgError { path: path.to_string(), message: message.into() }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > 40 => "a string".into(),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn mismatch(path: &str, expected: &str, got: &Value) -> ArgError {
    err(path, format!("expected {expected}, got {}", describe(got)))
}

/// Converts one JSON value to a component value of type `ty`.
pub fn json_to_val(ty: &Type, v: &Value, path: &str) -> Result<Val> {
    Ok(match ty {
        Type::Bool => Val::Bool(v.as_bool().ok_or_else(|| mismatch(path, "a boolean", v))?),
        Type::S8 => Val::S8(int(v, path, "s8", i8::MIN as i128, i8::MAX as i128)? as i8),
        Type::U8 => Val::U8(int(v, path, "u8", 0, u8::MAX as i128)? as u8),
        Type::S16 => Val::S16(int(v, path, "s16", i16::MIN as i128, i16::MAX as i128)? as i16),
        Type::U16 => Val::U16(int(v, path, "u16", 0, u16::MAX as i128)? as u16),
        Type::S32 => Val::S32(int(v, path, "s32", i32::MIN as i128, i32::MAX as i128)? as i32),
        Type::U32 => Val::U32(int(v, path, "u32", 0, u32::MAX as i128)? as u32),
        Type::S64 => Val::S64(int(v, path, "s64", i64::MIN as i128, i64::MAX as i128)? as i64),
        Type::U64 => Val::U64(int(v, path, "u64", 0, u64::MAX as i128)? as u64),
        Type::Float32 => {
            let x = float(v, path, "f32")?;
            // The same bound the schema states (`F32_LIMIT`, exclusive): beyond
            // it a finite number would round to an infinity.
            let y = x as f32;
            if x.is_finite() && !y.is_finite() {
                return Err(err(path, format!("{v} is out of range for f32")));
            }
            Val::Float32(y)
        }
        Type::Float64 => Val::Float64(float(v, path, "f64")?),
        Type::Char => {
            let s = v.as_str().ok_or_else(|| mismatch(path, "a one-character string (char)", v))?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => {
                    return Err(err(
                        path,
                        format!("expected exactly one character (char), got {} characters", s.chars().count()),
                    ));
                }
            }
        }
        Type::String => Val::String(v.as_str().ok_or_else(|| mismatch(path, "a string", v))?.to_string()),
        Type::List(list) => {
            let items = v.as_array().ok_or_else(|| mismatch(path, "an array", v))?;
            let elem = list.ty();
            Val::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| json_to_val(&elem, item, &format!("{path}[{i}]")))
                    .collect::<Result<_>>()?,
            )
        }
        Type::FixedLengthList(list) => {
            let items = v.as_array().ok_or_else(|| mismatch(path, "an array", v))?;
            if items.len() != list.len() as usize {
                return Err(err(path, format!("expected exactly {} items, got {}", list.len(), items.len())));
            }
            let elem = list.ty();
            Val::FixedLengthList(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| json_to_val(&elem, item, &format!("{path}[{i}]")))
                    .collect::<Result<_>>()?,
            )
        }
        Type::Map(map) => {
            // Always a list of [key, value] pairs: keys need not be strings.
            let (kt, vt) = (map.key(), map.value());
            let pairs = v.as_array().ok_or_else(|| mismatch(path, "an array of [key, value] pairs", v))?;
            let mut entries = Vec::with_capacity(pairs.len());
            for (i, pair) in pairs.iter().enumerate() {
                let p = format!("{path}[{i}]");
                match pair.as_array().map(Vec::as_slice) {
                    Some([k, item]) => entries
                        .push((json_to_val(&kt, k, &format!("{p}[0]"))?, json_to_val(&vt, item, &format!("{p}[1]"))?)),
                    _ => return Err(mismatch(&p, "a [key, value] pair", pair)),
                }
            }
            Val::Map(entries)
        }
        Type::Record(record) => {
            let obj = v.as_object().ok_or_else(|| mismatch(path, "an object", v))?;
            check_unknown_keys(path, obj, &record.fields().map(|f| f.name).collect::<Vec<_>>())?;
            Val::Record(
                record
                    .fields()
                    .map(|f| Ok((f.name.to_string(), field_to_val(path, obj, f.name, &f.ty)?)))
                    .collect::<Result<_>>()?,
            )
        }
        Type::Tuple(tuple) => {
            let items = v.as_array().ok_or_else(|| mismatch(path, "an array (tuple)", v))?;
            let types: Vec<Type> = tuple.types().collect();
            if items.len() != types.len() {
                return Err(err(path, format!("expected a tuple of {} items, got {}", types.len(), items.len())));
            }
            Val::Tuple(
                types
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (t, item))| json_to_val(t, item, &format!("{path}[{i}]")))
                    .collect::<Result<_>>()?,
            )
        }
        Type::Variant(variant) => {
            let (name, payload) = single_key(v, path, variant.cases().map(|c| c.name))?;
            let case = variant.cases().find(|c| c.name == name).expect("checked by single_key");
            let p = format!("{path}.{name}");
            Val::Variant(name.to_string(), payload_to_val(case.ty.as_ref(), payload, &p)?)
        }
        Type::Enum(en) => {
            let s = v.as_str().ok_or_else(|| mismatch(path, "a string (enum)", v))?;
            if !en.names().any(|n| n == s) {
                let names: Vec<&str> = en.names().collect();
                return Err(err(path, format!("{s:?} is not one of: {}", names.join(", "))));
            }
            Val::Enum(s.to_string())
        }
        Type::Option(opt) => {
            let inner = opt.ty();
            match v {
                Value::Null => Val::Option(None),
                _ if is_nullable(&inner) => {
                    let obj = v.as_object().filter(|o| o.len() == 1 && o.contains_key("some"));
                    let some = obj.ok_or_else(|| mismatch(path, "null or {\"some\": value}", v))?;
                    Val::Option(Some(Box::new(json_to_val(&inner, &some["some"], &format!("{path}.some"))?)))
                }
                _ => Val::Option(Some(Box::new(json_to_val(&inner, v, path)?))),
            }
        }
        Type::Result(result) => {
            let (name, payload) = single_key(v, path, ["ok", "err"].into_iter())?;
            let p = format!("{path}.{name}");
            if name == "ok" {
                Val::Result(Ok(payload_to_val(result.ok().as_ref(), payload, &p)?))
            } else {
                Val::Result(Err(payload_to_val(result.err().as_ref(), payload, &p)?))
            }
        }
        Type::Flags(flags) => {
            let items = v.as_array().ok_or_else(|| mismatch(path, "an array of flag names", v))?;
            let mut set: Vec<String> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                let s = item.as_str().ok_or_else(|| mismatch(&p, "a flag name", item))?;
                if !flags.names().any(|n| n == s) {
                    let names: Vec<&str> = flags.names().collect();
                    return Err(err(&p, format!("{s:?} is not one of: {}", names.join(", "))));
                }
                if set.iter().any(|x| x == s) {
                    return Err(err(&p, format!("flag {s:?} is listed twice")));
                }
                set.push(s.to_string());
            }
            Val::Flags(set)
        }
        other => return Err(err(path, format!("{} values cannot be passed as JSON", type_name(other)))),
    })
}

/// A payload of a variant case or result arm: `null` when the case has none.
fn payload_to_val(ty: Option<&Type>, payload: &Value, path: &str) -> Result<Option<Box<Val>>> {
    match ty {
        Some(t) => Ok(Some(Box::new(json_to_val(t, payload, path)?))),
        None if payload.is_null() => Ok(None),
        None => Err(mismatch(path, "null (this case carries no value)", payload)),
    }
}

/// `{"name": payload}` with exactly one key out of `names`.
fn single_key<'v, 'n>(v: &'v Value, path: &str, names: impl Iterator<Item = &'n str>) -> Result<(&'v str, &'v Value)> {
    let names: Vec<&str> = names.collect();
    let expected = format!("an object with exactly one of the keys: {}", names.join(", "));
    let obj = v.as_object().ok_or_else(|| mismatch(path, &expected, v))?;
    let mut it = obj.iter();
    match (it.next(), it.next()) {
        (Some((k, payload)), None) if names.contains(&k.as_str()) => Ok((k.as_str(), payload)),
        (Some((k, _)), None) => Err(err(path, format!("unknown case \"{k}\" (expected one of: {})", names.join(", ")))),
        _ => Err(err(path, format!("expected {expected}, got an object with {} keys", obj.len()))),
    }
}

fn int(v: &Value, path: &str, ty: &str, min: i128, max: i128) -> Result<i128> {
    let n = match v {
        Value::Number(n) => n,
        _ => return Err(mismatch(path, &format!("an integer ({ty})"), v)),
    };
    // Numbers keep their literal text (serde_json's arbitrary_precision), so
    // integers beyond 64 bits are compared exactly, never rounded to a float.
    let text = n.to_string();
    let x: i128 = if let Ok(i) = text.parse::<i128>() {
        i
    } else if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err(err(path, format!("{text} is out of range for {ty}")));
    } else {
        // A float literal: JSON Schema's "integer" accepts 2.0, not 2.5.
        let f = n.as_f64().unwrap_or(f64::NAN);
        if f.fract() != 0.0 || !f.is_finite() {
            return Err(err(path, format!("{text} is not an integer ({ty})")));
        }
        if f < min as f64 || f > max as f64 {
            return Err(err(path, format!("{text} is out of range for {ty}")));
        }
        f as i128
    };
    if x < min || x > max {
        return Err(err(path, format!("{text} is out of range for {ty}")));
    }
    Ok(x)
}

/// Half an ULP above f32::MAX: the smallest magnitude that rounds to infinity.
pub const F32_LIMIT: f64 = 3.4028235677973366e38;

fn float(v: &Value, path: &str, ty: &str) -> Result<f64> {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.is_finite() => Ok(x),
            // A literal such as 1e400: infinities are only ever spelled out.
            _ => Err(err(path, format!("{n} is out of range for {ty}"))),
        },
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(mismatch(path, &format!("a number ({ty}) or one of \"NaN\", \"Infinity\", \"-Infinity\""), v)),
        },
        _ => Err(mismatch(path, &format!("a number ({ty})"), v)),
    }
}

/// A short WIT-ish name of a type, for messages.
pub fn type_name(ty: &Type) -> &'static str {
    match ty {
        Type::Bool => "bool",
        Type::S8 => "s8",
        Type::U8 => "u8",
        Type::S16 => "s16",
        Type::U16 => "u16",
        Type::S32 => "s32",
        Type::U32 => "u32",
        Type::S64 => "s64",
        Type::U64 => "u64",
        Type::Float32 => "f32",
        Type::Float64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::List(_) => "list",
        Type::FixedLengthList(_) => "fixed-length list",
        Type::Map(_) => "map",
        Type::Record(_) => "record",
        Type::Tuple(_) => "tuple",
        Type::Variant(_) => "variant",
        Type::Enum(_) => "enum",
        Type::Option(_) => "option",
        Type::Result(_) => "result",
        Type::Flags(_) => "flags",
        Type::Own(_) => "resource (own)",
        Type::Borrow(_) => "resource (borrow)",
        Type::Future(_) => "future",
        Type::Stream(_) => "stream",
        Type::ErrorContext => "error-context",
    }
}

/// Converts a component value to JSON, losslessly (see `schema.rs`).
pub fn val_to_json(v: &Val) -> Value {
    match v {
        Val::Bool(b) => Value::Bool(*b),
        Val::S8(x) => (*x).into(),
        Val::U8(x) => (*x).into(),
        Val::S16(x) => (*x).into(),
        Val::U16(x) => (*x).into(),
        Val::S32(x) => (*x).into(),
        Val::U32(x) => (*x).into(),
        Val::S64(x) => (*x).into(),
        Val::U64(x) => (*x).into(),
        // Through the shortest decimal form, so 1.1f32 prints as 1.1.
        Val::Float32(x) => float_json(x.to_string().parse::<f64>().unwrap_or(f64::NAN), x.is_finite()),
        Val::Float64(x) => float_json(*x, x.is_finite()),
        Val::Char(c) => Value::String(c.to_string()),
        Val::String(s) => Value::String(s.clone()),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Value::Array(items.iter().map(val_to_json).collect())
        }
        Val::Map(entries) => {
            Value::Array(entries.iter().map(|(k, v)| Value::Array(vec![val_to_json(k), val_to_json(v)])).collect())
        }
        Val::Record(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), val_to_json(v))).collect()),
        Val::Variant(name, payload) => single(name, payload.as_deref()),
        Val::Enum(name) => Value::String(name.clone()),
        Val::Option(None) => Value::Null,
        Val::Option(Some(inner)) => match inner.as_ref() {
            Val::Option(_) => single("some", Some(inner)),
            other => val_to_json(other),
        },
        Val::Result(Ok(payload)) => single("ok", payload.as_deref()),
        Val::Result(Err(payload)) => single("err", payload.as_deref()),
        Val::Flags(names) => Value::Array(names.iter().map(|n| Value::String(n.clone())).collect()),
        Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => Value::Null,
    }
}

/// About how many bytes `val_to_json(v)` takes as JSON text (strings
/// counted without escapes), walked without building it: a result can be
/// refused before it is copied.
pub fn json_size(v: &Val) -> usize {
    match v {
        Val::String(s) => s.len() + 2,
        Val::Char(_) => 6,
        Val::Bool(_) | Val::Enum(_) => 8,
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            2 + items.iter().map(|i| json_size(i) + 1).sum::<usize>()
        }
        Val::Map(entries) => 2 + entries.iter().map(|(k, v)| json_size(k) + json_size(v) + 4).sum::<usize>(),
        Val::Record(fields) => 2 + fields.iter().map(|(k, v)| k.len() + 4 + json_size(v)).sum::<usize>(),
        Val::Variant(name, payload) => name.len() + 6 + payload.as_deref().map_or(4, json_size),
        Val::Option(inner) => inner.as_deref().map_or(4, |i| json_size(i) + 8),
        Val::Result(Ok(p)) | Val::Result(Err(p)) => 8 + p.as_deref().map_or(4, json_size),
        Val::Flags(names) => 2 + names.iter().map(|n| n.len() + 3).sum::<usize>(),
        _ => 24, // numbers; resources and the like come out as null
    }
}

fn float_json(x: f64, finite: bool) -> Value {
    if finite {
        Number::from_f64(x).map(Value::Number).unwrap_or(Value::Null)
    } else if x.is_nan() {
        Value::String(NON_FINITE[0].into())
    } else if x > 0.0 {
        Value::String(NON_FINITE[1].into())
    } else {
        Value::String(NON_FINITE[2].into())
    }
}

fn single(name: &str, payload: Option<&Val>) -> Value {
    let mut obj = Map::new();
    obj.insert(name.to_string(), payload.map(val_to_json).unwrap_or(Value::Null));
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn to_val(ty: Type, v: Value) -> std::result::Result<Val, String> {
        json_to_val(&ty, &v, "args.x").map_err(|e| e.to_string())
    }

    #[test]
    fn json_size_is_close_to_the_json_text() {
        let v = Val::Record(vec![
            ("text".into(), Val::String("x".repeat(1000))),
            ("items".into(), Val::List(vec![Val::U32(7); 10])),
            ("maybe".into(), Val::Option(None)),
        ]);
        let text = val_to_json(&v).to_string();
        let size = json_size(&v);
        assert!(size >= text.len() && size < text.len() * 3, "{size} vs {}", text.len());
    }

    #[test]
    fn integers_are_checked_against_their_true_bounds() {
        assert_eq!(to_val(Type::U8, json!(255)).unwrap(), Val::U8(255));
        assert!(to_val(Type::U8, json!(256)).unwrap_err().contains("args.x: 256 is out of range for u8"));
        assert!(to_val(Type::U32, json!(-1)).is_err());
        assert_eq!(to_val(Type::U64, json!(u64::MAX)).unwrap(), Val::U64(u64::MAX));
        assert_eq!(to_val(Type::S64, json!(i64::MIN)).unwrap(), Val::S64(i64::MIN));
        assert!(to_val(Type::S32, json!(1.5)).is_err());
        assert!(to_val(Type::S32, json!("1")).unwrap_err().contains("expected an integer"));
    }

    #[test]
    fn chars_strings_and_bools() {
        assert_eq!(to_val(Type::Char, json!("é")).unwrap(), Val::Char('é'));
        assert!(to_val(Type::Char, json!("ab")).is_err());
        assert_eq!(to_val(Type::String, json!("a\u{2028}b")).unwrap(), Val::String("a\u{2028}b".into()));
        assert!(to_val(Type::Bool, json!(1)).is_err());
    }

    #[test]
    fn floats_and_their_non_finite_names() {
        assert_eq!(to_val(Type::Float64, json!("Infinity")).unwrap(), Val::Float64(f64::INFINITY));
        assert!(matches!(to_val(Type::Float64, json!("NaN")).unwrap(), Val::Float64(x) if x.is_nan()));
        assert!(to_val(Type::Float32, json!(1e39)).is_err(), "beyond f32");
        assert_eq!(val_to_json(&Val::Float64(f64::NEG_INFINITY)), json!("-Infinity"));
        assert_eq!(val_to_json(&Val::Float64(0.5)), json!(0.5));
        assert_eq!(val_to_json(&Val::U64(u64::MAX)), json!(u64::MAX));
    }
}
