//! Where a value comes from: the argument itself, stdin (`-` or no
//! argument), or a file (`@path`).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use crate::error::Error;

/// The source of a value given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// The argument's own bytes.
    Literal(String),
    /// All of stdin, byte for byte.
    Stdin,
    /// All of a file, byte for byte.
    File(PathBuf),
}

impl ValueSource {
    /// Reads a VALUE argument: `-` is stdin, `@path` a file, anything else
    /// the value itself.
    pub fn parse(text: &str) -> Result<ValueSource, String> {
        match text {
            "-" => Ok(ValueSource::Stdin),
            "@" => Err("\"@\" needs a file path after it, as in @value.bin".into()),
            _ => Ok(match text.strip_prefix('@') {
                Some(path) => ValueSource::File(path.into()),
                None => ValueSource::Literal(text.to_owned()),
            }),
        }
    }

    /// The value's bytes, exactly: nothing is trimmed or converted.
    pub fn read(self) -> Result<Vec<u8>, Error> {
        match self {
            ValueSource::Literal(text) => Ok(text.into_bytes()),
            ValueSource::File(path) => {
                std::fs::read(&path).map_err(|source| Error::Read { path, source })
            }
            ValueSource::Stdin => {
                let mut stdin = std::io::stdin().lock();
                if stdin.is_terminal() {
                    // Without this a person sees a command that seems to hang.
                    eprintln!("reading the value from stdin; end it with Ctrl-D");
                }
                let mut value = Vec::new();
                stdin
                    .read_to_end(&mut value)
                    .map_err(|source| Error::Read {
                        path: "stdin".into(),
                        source,
                    })?;
                Ok(value)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_arguments_name_their_source() {
        let cases = [
            (
                "hello",
                Ok(ValueSource::Literal("hello".into())),
                "a literal",
            ),
            ("-", Ok(ValueSource::Stdin), "a dash is stdin"),
            (
                "@v.bin",
                Ok(ValueSource::File("v.bin".into())),
                "@ names a file",
            ),
            (
                "",
                Ok(ValueSource::Literal(String::new())),
                "an empty value is allowed",
            ),
            ("@", Err(()), "@ alone names nothing"),
        ];
        for (text, expected, why) in cases {
            assert_eq!(ValueSource::parse(text).map_err(|_| ()), expected, "{why}");
        }
    }
}
