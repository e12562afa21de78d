//! Every way the engine's API can refuse, as one enum. The FFI seam
//! (lib.rs) turns each kind into one Python exception class.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The bytes are not a usable component.
    InvalidComponent(String),
    /// The host could not do its part (I/O, engine set-up).
    Host(String),
    /// The arguments are not JSON (or not valid Unicode).
    InvalidArguments(String),
    /// The effective policy handed over is malformed.
    InvalidPolicy(String),
    /// The component has no such export.
    UnknownExport(String),
    /// A call was asked to go on after it had ended.
    CallEnded,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidComponent(m) | Error::Host(m) | Error::InvalidArguments(m) | Error::InvalidPolicy(m) => {
                f.write_str(m)
            }
            Error::UnknownExport(what) => write!(f, "the component has no export {what}"),
            Error::CallEnded => f.write_str("the call has ended"),
        }
    }
}

impl std::error::Error for Error {}
