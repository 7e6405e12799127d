//! The command line: every flag, argument, environment variable and help
//! text lives here, and nowhere else. Values are parsed into types at this
//! edge (a [`Duration`], an [`Endpoint`], a `ValueSource`), so the rest of
//! kvctl never sees a raw string it has to check.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Parser, Subcommand};

use crate::client::MAX_PAGE;
use crate::config::{ClientConfig, Endpoint, Token, TokenOverHttp};
use crate::error::Error;
use crate::output::Format;
use crate::value::ValueSource;

/// The end of `kvctl --help`: examples, and the exit codes, which `main`
/// decides.
const ROOT_LONG_HELP: &str = "\
Examples:
  kvctl set greeting hello --ttl 30s
  kvctl get greeting
  kvctl --endpoint https://kv.example:8443 --cacert ca.pem list user/
  KVCTL_ENDPOINT=http://10.0.0.5:8080 kvctl -o json get greeting
  KVCTL_TOKEN=... kvctl --endpoint http://10.0.0.5:8080 --insecure get greeting

A token is only sent over https, or over plain http to localhost: anything
else is refused (exit 2) unless --insecure is given.

Exit codes:
  0  success
  1  the key was not found
  2  usage error: bad flags or arguments, unreadable input, a token kvctl
     won't send over plain http (see --insecure) or that is not one line of
     printable ASCII, an endpoint with a user or password, or a request the
     server refused as malformed or too large
  3  a condition failed: the key exists (--if-absent) or is at another
     version (--if-version)
  4  any other error: the server can't be reached, refused the token, is
     full (507: its --max-memory bound refuses the write), or failed";

/// kvctl: talk to a kvstore server from the command line.
///
/// Set, get and delete keys, list them, and move them between servers with
/// export and import. Results are text for people, or with `-o json` one
/// JSON document per result for scripts. Errors are one line on stderr, and
/// the exit code says what kind of error it was.
#[derive(Debug, Parser)]
#[command(
    name = "kvctl",
    version,
    after_long_help = ROOT_LONG_HELP,
    after_help = "Run 'kvctl help <command>' or 'kvctl <command> --help' for examples."
)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes, before or after the command name.
#[derive(Debug, Args)]
pub struct Global {
    /// The server's URL.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "KVCTL_ENDPOINT",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL",
        value_parser = EndpointParser
    )]
    pub endpoint: Endpoint,

    /// Bearer token for a server with auth. Prefer the environment variable:
    /// a flag shows up in the process list. kvctl never prints it.
    // Checked by `client_config`, not by a value parser: clap's error for a
    // rejected value quotes the value.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "KVCTL_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// Output format: text for people, json for scripts (one JSON document
    /// per result, one per line).
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        help_heading = "Global options",
        value_enum,
        default_value_t = Format::Text,
        value_name = "FORMAT"
    )]
    pub output: Format,

    /// How long one request may take, connecting included (e.g. 30s, 500ms).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        default_value = "30s",
        value_name = "DURATION",
        value_parser = kvapi::parse_duration
    )]
    pub timeout: Duration,

    /// A PEM file of CA certificates to trust for an https endpoint, on top
    /// of the built-in roots (for a server with a private CA).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "PEM"
    )]
    pub cacert: Option<PathBuf>,

    /// Send the token over plain http to a host other than this machine.
    ///
    /// Without this flag kvctl refuses (exit 2, before connecting) to send a
    /// token in clear text anywhere but localhost, 127.0.0.0/8 or ::1, since
    /// anyone on the network could read it and use it. Prefer an https
    /// endpoint; use --insecure only on a network you trust. It does not turn
    /// off certificate checks for https.
    ///
    /// Example: KVCTL_TOKEN=... kvctl --endpoint http://10.0.0.5:8080 --insecure get greeting
    #[arg(long, global = true, help_heading = "Global options")]
    pub insecure: bool,
}

impl Global {
    /// How to reach the server, as the client takes it. Fails on a token
    /// that cannot go in an HTTP header.
    pub fn client_config(&self) -> Result<ClientConfig, Error> {
        Ok(ClientConfig {
            endpoint: self.endpoint.clone(),
            token: self
                .token
                .clone()
                .filter(|token| !token.is_empty())
                .map(Token::new)
                .transpose()?,
            timeout: self.timeout,
            ca_cert: self.cacert.clone(),
            token_over_http: if self.insecure {
                TokenOverHttp::Anywhere
            } else {
                TokenOverHttp::LoopbackOnly
            },
        })
    }
}

/// Parses `--endpoint` with [`Endpoint::parse`]. clap's own error for a
/// rejected value quotes the value, which may hold a password
/// (`http://user:pw@host`); this one says only what `Endpoint::parse` says,
/// and that never shows a password.
#[derive(Debug, Clone, Copy)]
struct EndpointParser;

impl clap::builder::TypedValueParser for EndpointParser {
    type Value = Endpoint;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Endpoint, clap::Error> {
        let refuse = |message: String| {
            let message = format!("invalid --endpoint (or KVCTL_ENDPOINT): {message}");
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| refuse("the URL is not valid UTF-8".into()))?;
        Endpoint::parse(text).map_err(refuse)
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a key (creates it or replaces its value).
    #[command(
        allow_negative_numbers = true,
        after_long_help = "\
Examples:
  kvctl set greeting hello                 # create or replace
  kvctl set session/42 '{\"user\":7}' --ttl 30m
  kvctl set greeting hi --if-absent        # exit 3 if it exists
  kvctl set counter 8 --if-version 17      # compare-and-swap: exit 3 unless at version 17
  date | kvctl set now                     # the value from stdin
  kvctl set avatar @avatar.png             # the value from a file, byte for byte
  kvctl set dash -- -x                     # a value that starts with a dash

Without --ttl the key keeps the deadline it had, if any."
    )]
    Set(SetArgs),

    /// Print a key's value.
    #[command(after_long_help = "\
Examples:
  kvctl get greeting                       # the value, as text
  kvctl get avatar --raw > avatar.png      # the exact bytes
  kvctl -o json get greeting               # {\"key\":…,\"value\":…,\"version\":…,\"ttl_ms\":…}

As text, a value that is not UTF-8 is shown escaped (\\x00); use --raw for
its bytes, or -o json for base64 with \"encoding\":\"base64\". Exit 1 if the
key does not exist.")]
    Get(GetArgs),

    /// Delete a key.
    #[command(
        visible_alias = "delete",
        after_long_help = "\
Examples:
  kvctl del greeting
  kvctl del counter --if-version 17        # exit 3 unless at version 17

Exit 1 if the key does not exist."
    )]
    Del(DelArgs),

    /// Replace the value of a key that exists.
    #[command(
        allow_negative_numbers = true,
        after_long_help = "\
Examples:
  kvctl update greeting 'hello again'      # keeps the TTL it had
  kvctl update session/42 @session.json --ttl 1h
  kvctl update greeting hi --persist       # and remove its TTL

Exit 1 if the key does not exist: update never creates one."
    )]
    Update(UpdateArgs),

    /// Show how long a key has left.
    #[command(after_long_help = "\
Examples:
  kvctl ttl session/42                     # expires in 29m 57s
  kvctl -o json ttl session/42             # {\"key\":\"session/42\",\"ttl_ms\":1797000}

ttl_ms is null for a key without a deadline. Exit 1 if the key does not exist.")]
    Ttl(TtlArgs),

    /// List keys in byte order, with size, version and TTL.
    #[command(
        visible_alias = "ls",
        after_long_help = "\
Examples:
  kvctl list                               # every key
  kvctl list user/ --limit 10              # the first 10 keys starting with user/
  kvctl -o json list | jq -r .key          # one JSON document per key

kvctl asks for one page after the other until the listing is complete."
    )]
    List(ListArgs),

    /// Write keys and values to stdout as JSON Lines, for `import`.
    #[command(after_long_help = "\
Examples:
  kvctl export > backup.jsonl
  kvctl export user/ | gzip > users.jsonl.gz

Each line is {\"key\":…,\"value\":…,\"encoding\":\"base64\"?,\"expires_at\":…?}.
Values that are not UTF-8 are base64. Deadlines are absolute UTC times
(RFC 3339), so keys imported later keep the deadline they had, not a fresh
TTL. Versions are not exported: the target server numbers its own writes.")]
    Export(ExportArgs),

    /// Write the keys of an export file into the server.
    #[command(after_long_help = "\
Examples:
  kvctl import backup.jsonl
  kvctl --endpoint http://new:8080 import backup.jsonl --if-absent
  kvctl export | kvctl --endpoint http://new:8080 import -

By default each key is written as in the file: value and deadline replaced,
a key without expires_at made persistent. Keys whose deadline has passed are
skipped. A progress bar shows on a terminal; at the end kvctl prints how many
keys it imported and skipped. A malformed line stops the import with its
line number.")]
    Import(ImportArgs),

    /// Print each change under a prefix as it happens, until Ctrl-C.
    #[command(after_long_help = "\
Examples:
  kvctl watch config/                      # 12 put    config/mode = \"on\"
  kvctl watch --from 40                    # every change after revision 40, then live
  kvctl -o json watch | jq -r .key         # one JSON object per change

One line per change: revision, kind (put, delete, expire) and key, with the
value of a put. An expiry shows when the server notices it (on an access or
in its background pass), not at the deadline. If the connection drops, kvctl
reconnects by itself from the last revision it printed (before the first,
from where the watch started); if the server no longer keeps that far back, it says so and exits 4. Ctrl-C exits 0.")]
    Watch(WatchArgs),

    /// Check that the server is up.
    #[command(after_long_help = "\
Examples:
  kvctl health                             # ok: http://127.0.0.1:8080 is up
  kvctl --endpoint http://10.0.0.5:8080 --timeout 2s health || echo down

Exit 0 when the server answers /healthz, 4 otherwise.")]
    Health,

    /// Print a shell completion script.
    #[command(after_long_help = "\
Examples:
  kvctl completions bash > ~/.local/share/bash-completion/completions/kvctl
  kvctl completions zsh > ~/.zfunc/_kvctl
  kvctl completions fish > ~/.config/fish/completions/kvctl.fish")]
    Completions(CompletionsArgs),
}

/// Arguments of `set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The key (any UTF-8, `/` included).
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub key: String,

    /// The value: text, `@path` for a file's bytes, `-` or nothing for stdin.
    #[arg(value_parser = ValueSource::parse)]
    pub value: Option<ValueSource>,

    /// Expire the key this long after the write (e.g. 1500ms, 30s, 5m, 2h, 7d).
    #[arg(long, value_name = "DURATION", value_parser = kvapi::parse_ttl)]
    pub ttl: Option<Duration>,

    /// Only create: fail with exit 3 if the key exists.
    #[arg(long, conflicts_with = "if_version")]
    pub if_absent: bool,

    /// Only replace version N (compare-and-swap): fail with exit 3 otherwise.
    #[arg(long, value_name = "N")]
    pub if_version: Option<u64>,
}

/// Arguments of `get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The key.
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub key: String,

    /// Print the value's exact bytes, with no newline added (ignores -o).
    #[arg(long)]
    pub raw: bool,
}

/// Arguments of `del`.
#[derive(Debug, Args)]
pub struct DelArgs {
    /// The key.
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub key: String,

    /// Only delete version N: fail with exit 3 otherwise.
    #[arg(long, value_name = "N")]
    pub if_version: Option<u64>,
}

/// Arguments of `update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The key; it must exist.
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub key: String,

    /// The new value: text, `@path` for a file's bytes, `-` for stdin.
    #[arg(value_parser = ValueSource::parse)]
    pub value: ValueSource,

    /// Set a new TTL (e.g. 30s, 5m); without it the current deadline stays.
    #[arg(long, value_name = "DURATION", value_parser = kvapi::parse_ttl)]
    pub ttl: Option<Duration>,

    /// Remove the key's TTL: it will never expire.
    #[arg(long, conflicts_with = "ttl")]
    pub persist: bool,
}

/// Arguments of `ttl`.
#[derive(Debug, Args)]
pub struct TtlArgs {
    /// The key.
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub key: String,
}

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only keys that start with this.
    #[arg(default_value = "", hide_default_value = true)]
    pub prefix: String,

    /// Stop after N keys [default: all of them].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,

    /// Keys asked for per request.
    #[arg(long, value_name = "N", default_value_t = MAX_PAGE as u64,
          value_parser = clap::value_parser!(u64).range(1..=MAX_PAGE as u64))]
    pub page_size: u64,
}

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only keys that start with this.
    #[arg(default_value = "", hide_default_value = true)]
    pub prefix: String,

    /// Keys asked for per request.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=MAX_PAGE as u64))]
    pub page_size: u64,
}

/// Arguments of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The export file (JSON Lines), or `-` for stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Only create keys: leave the ones that exist as they are, and count them.
    #[arg(long)]
    pub if_absent: bool,
}

/// Arguments of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only keys that start with this.
    #[arg(default_value = "", hide_default_value = true)]
    pub prefix: String,

    /// Start with the changes after this revision (from the server's
    /// history) instead of from now.
    #[arg(long, value_name = "REVISION")]
    pub from: Option<u64>,
}

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example_in_its_long_help() {
        for command in Cli::command().get_subcommands() {
            let help = command
                .get_after_long_help()
                .map(|help| help.to_string())
                .unwrap_or_default();
            assert!(
                help.contains("Examples:\n  kvctl"),
                "{} has no example",
                command.get_name()
            );
        }
    }
}
