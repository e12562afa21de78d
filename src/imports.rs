//! The imports of a component that the host does not provide: stubbed so the
//! component loads, and, for functions of imported interfaces, linked at
//! call time to the loaded component that exports the interface (`link.rs`).

use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::types::ComponentFunc;
use wasmtime::component::{Component, Linker, Type};

use crate::sandbox::Host;

/// WASI interfaces the linker provides (any 0.2.x version links to them).
const PROVIDED: [&str; 7] =
    ["wasi:cli/", "wasi:clocks/", "wasi:filesystem/", "wasi:io/", "wasi:random/", "wasi:sockets/", "wasi:http/"];

fn provided(import: &str) -> bool {
    (PROVIDED.iter().any(|p| import.starts_with(p)) && import.contains("@0.2."))
        || import == crate::gates::config::INTERFACE
        || import.starts_with("wassette:mcp/host@0.1.")
}

/// Imports we do not provide do not fail the load: a tool that never touches
/// them still works. A function of an imported interface is linked at call
/// time to the loaded component that exports that interface, if the runtime
/// names one (`link.rs`), and fails the call otherwise; other functions trap
/// when called. (Wasmtime's own `define_unknown_imports_as_traps` would also
/// shadow WASI instances that only match by semver, e.g.
/// `wasi:io/streams@0.2.12`.) Returns the interface functions, as
/// (interface, function).
pub fn stub_unknown_imports(
    linker: &mut Linker<Host>,
    engine: &Engine,
    component: &Component,
) -> wasmtime::Result<Vec<(String, String)>> {
    use wasmtime::component::ResourceType;
    use wasmtime::component::types::ComponentItem;

    fn stub(
        inst: &mut wasmtime::component::LinkerInstance<'_, Host>,
        name: &str,
        item: &ComponentItem,
        path: &str,
        engine: &Engine,
        imports: &mut Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        match item {
            ComponentItem::ComponentFunc(_) if path.is_empty() => {
                let full = name.to_string();
                inst.func_new(name, move |_, _, _, _| {
                    wasmtime::bail!("the component called `{full}`, which this host does not provide")
                })?;
            }
            ComponentItem::ComponentFunc(func) => {
                imports.push((path.to_string(), name.to_string()));
                let at: Arc<(String, String)> = Arc::new((path.to_string(), name.to_string()));
                let resources = passes_resources(func);
                inst.func_new_async(name, move |store, _, params, results| {
                    let at = at.clone();
                    Box::new(
                        async move { crate::link::call_import(store, &at.0, &at.1, resources, params, results).await },
                    )
                })?;
            }
            ComponentItem::Resource(_) => {
                inst.resource(name, ResourceType::host::<()>(), |_, _| Ok(()))?;
            }
            ComponentItem::ComponentInstance(ty) => {
                let mut child = inst.instance(name)?;
                for (export, ext) in ty.exports(engine) {
                    stub(&mut child, export, &ext.ty, name, engine, imports)?;
                }
            }
            ComponentItem::Component(_) | ComponentItem::Module(_) => {
                wasmtime::bail!("the component imports `{name}`, a component or module, which cannot be provided")
            }
            ComponentItem::CoreFunc(_) | ComponentItem::Type(_) => {}
        }
        Ok(())
    }

    let ty = component.component_type();
    let mut root = linker.root();
    let mut imports = Vec::new();
    for (name, ext) in ty.imports(engine) {
        if !provided(name) {
            stub(&mut root, name, &ext.ty, "", engine, &mut imports)?;
        }
    }
    Ok(imports)
}

/// Whether values of this function's types hold resource handles, which
/// belong to one store and cannot be copied into another.
pub fn passes_resources(func: &ComponentFunc) -> bool {
    func.params().any(|(_, t)| holds_resource(&t)) || func.results().any(|t| holds_resource(&t))
}

fn holds_resource(ty: &Type) -> bool {
    match ty {
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => true,
        Type::List(l) => holds_resource(&l.ty()),
        Type::FixedLengthList(l) => holds_resource(&l.ty()),
        Type::Map(m) => holds_resource(&m.key()) || holds_resource(&m.value()),
        Type::Record(r) => r.fields().any(|f| holds_resource(&f.ty)),
        Type::Tuple(t) => t.types().any(|t| holds_resource(&t)),
        Type::Variant(v) => v.cases().any(|c| c.ty.is_some_and(|t| holds_resource(&t))),
        Type::Option(o) => holds_resource(&o.ty()),
        Type::Result(r) => r.ok().is_some_and(|t| holds_resource(&t)) || r.err().is_some_and(|t| holds_resource(&t)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::Config;
    use wasmtime::component::types::ComponentItem;

    use super::*;

    /// The functions of the one imported instance of a component in WAT.
    fn imported_funcs(wat: &str) -> Vec<(String, bool)> {
        let mut cfg = Config::new();
        cfg.wasm_component_model(true);
        let engine = Engine::new(&cfg).unwrap();
        let component = Component::new(&engine, wat).unwrap();
        let mut out = Vec::new();
        for (_, item) in component.component_type().imports(&engine) {
            if let ComponentItem::ComponentInstance(inst) = item.ty {
                for (name, export) in inst.exports(&engine) {
                    if let ComponentItem::ComponentFunc(f) = export.ty {
                        out.push((name.to_string(), passes_resources(&f)));
                    }
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn plain_values_may_cross_resources_may_not() {
        let funcs = imported_funcs(
            r#"(component
                (import "t:x/y@0.1.0" (instance
                    (export "handle" (type $h (sub resource)))
                    (export "plain" (func (param "a" string) (result (result string (error string)))))
                    (export "nested" (func (param "a" (list (tuple u8 (option (own $h)))))))
                    (export "borrowed" (func (param "a" (borrow $h)) (result u32)))
                    (export "returned" (func (result (own $h))))
                    (type $r (record (field "n" u32) (field "s" (list string))))
                    (export "r" (type $named (eq $r)))
                    (export "record" (func (param "a" $named)))
                ))
            )"#,
        );
        assert_eq!(
            funcs,
            [
                ("borrowed".to_string(), true),
                ("nested".to_string(), true),
                ("plain".to_string(), false),
                ("record".to_string(), false),
                ("returned".to_string(), true),
            ]
        );
    }
}
