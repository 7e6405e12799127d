//! How results are shown: text for people, or one JSON document per result
//! for scripts.

use std::io::Write;

use crate::error::Error;

/// The output format chosen with `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for people.
    Text,
    /// One JSON document per line, for scripts.
    Json,
}

/// Where results go, in the chosen format.
pub struct Output<'a> {
    format: Format,
    out: &'a mut dyn Write,
}

impl<'a> Output<'a> {
    /// Results in `format`, written to `out`.
    pub fn new(format: Format, out: &'a mut dyn Write) -> Output<'a> {
        Output { format, out }
    }

    /// The chosen format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// A line of text.
    pub fn line(&mut self, text: impl std::fmt::Display) -> Result<(), Error> {
        writeln!(self.out, "{text}").map_err(Error::Output)
    }

    /// One JSON document on its own line.
    pub fn json(&mut self, document: &impl serde::Serialize) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.out, document)?;
        self.out.write_all(b"\n").map_err(Error::Output)
    }

    /// Bytes exactly as they are.
    pub fn bytes(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.out.write_all(bytes).map_err(Error::Output)
    }

    /// Pushes what is buffered out, so a long listing shows as it arrives.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.out.flush().map_err(Error::Output)
    }
}

/// A key as text: as it is, unless quoting makes it readable (control
/// characters, surrounding spaces, empty).
pub fn shown_key(key: &str) -> String {
    let plain =
        !key.is_empty() && key.trim() == key && !key.chars().any(|c| c.is_control() || c == '"');
    if plain {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_quoted_only_when_that_helps() {
        let cases = [
            ("user/1", "user/1"),
            ("with space", "with space"),
            (" padded", "\" padded\""),
            ("tab\there", "\"tab\\there\""),
            ("", "\"\""),
        ];
        for (key, shown) in cases {
            assert_eq!(shown_key(key), shown, "{key:?}");
        }
    }
}
