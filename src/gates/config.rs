//! `wasi:config/store`: configuration for components written against it
//! (Wassette's get-weather-js reads its API key this way), served from the
//! same granted environment variables and secrets as `wasi:cli/environment`
//! — nothing more.

use wasmtime::StoreContextMut;
use wasmtime::component::{ComponentType, Lift, Linker, Lower};

use crate::sandbox::Host;

/// The interface, exactly: pre-release versions only link to themselves.
pub const INTERFACE: &str = "wasi:config/store@0.2.0-draft";

#[derive(ComponentType, Lift, Lower)]
#[component(variant)]
enum ConfigError {
    #[component(name = "upstream")]
    #[allow(dead_code)]
    Upstream(String),
    #[component(name = "io")]
    #[allow(dead_code)]
    Io(String),
}

type GetResult = Result<Option<String>, ConfigError>;
type GetAllResult = Result<Vec<(String, String)>, ConfigError>;

pub fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    let mut inst = linker.instance(INTERFACE)?;
    inst.func_wrap("get", |store: StoreContextMut<'_, Host>, (key,): (String,)| {
        let value = store.data().config.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
        Ok((GetResult::Ok(value),))
    })?;
    inst.func_wrap("get-all", |store: StoreContextMut<'_, Host>, (): ()| {
        Ok((GetAllResult::Ok(store.data().config.clone()),))
    })?;
    Ok(())
}
