//! `list`: keys in byte order, one page after the other.

use kvapi::ListItem;

use crate::cli::ListArgs;
use crate::client::Client;
use crate::duration;
use crate::error::Error;
use crate::output::{Format, Output, shown_key};

pub fn list(client: &Client, args: ListArgs, out: &mut Output) -> Result<(), Error> {
    let mut left = args.limit.unwrap_or(u64::MAX);
    let mut cursor = None;
    while left > 0 {
        let page_size = args.page_size.min(left) as usize;
        let page = client.list(&args.prefix, cursor.as_deref(), page_size, false)?;
        let shown = &page.items[..page.items.len().min(left as usize)];
        show_page(shown, out)?;
        left -= shown.len() as u64;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(())
}

/// Prints a page; as text, its columns are aligned within the page (a
/// listing streams, so it can't wait to align with later pages).
fn show_page(items: &[ListItem<'_>], out: &mut Output) -> Result<(), Error> {
    match out.format() {
        Format::Text => {
            let keys: Vec<String> = items.iter().map(|item| shown_key(&item.key)).collect();
            let key_width = keys
                .iter()
                .map(|key| key.chars().count())
                .max()
                .unwrap_or(0);
            let size_width = items
                .iter()
                .map(|item| item.size.to_string().len())
                .max()
                .unwrap_or(0);
            for (item, key) in items.iter().zip(&keys) {
                let expiry = match item.ttl() {
                    Some(ttl) => format!("  expires in {}", duration::format(ttl)),
                    None => String::new(),
                };
                let padding = key_width - key.chars().count();
                out.line(format_args!(
                    "{key}{:padding$}  {:>size_width$} bytes  version {}{expiry}",
                    "", item.size, item.version
                ))?;
            }
        }
        Format::Json => {
            // The listing's item shape, without values (none were asked for).
            for item in items {
                out.json(&ListItem {
                    value: None,
                    encoding: None,
                    ..item.clone()
                })?;
            }
        }
    }
    out.flush()
}
