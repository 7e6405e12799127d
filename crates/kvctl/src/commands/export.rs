//! `export`: every key under a prefix as JSON Lines, one [`Record`] a line.

use jiff::Timestamp;

use crate::cli::ExportArgs;
use crate::client::Client;
use crate::error::Error;
use crate::output::Output;
use crate::record::Record;

pub fn export(client: &Client, args: ExportArgs, out: &mut Output) -> Result<(), Error> {
    let mut cursor = None;
    loop {
        let page = client.list(
            &args.prefix,
            cursor.as_deref(),
            args.page_size as usize,
            true,
        )?;
        // The TTLs in the page count down from when the server answered;
        // reading the clock right after keeps the deadlines within the
        // request's round trip of the truth.
        let now = Timestamp::now();
        // Every value of the page is decoded before any is printed, so a
        // page with a bad one prints nothing.
        let mut values = Vec::with_capacity(page.items.len());
        for item in &page.items {
            values.push(item.value_bytes().transpose().map_err(|_| {
                client.unexpected(format!("the value of {:?} is not valid base64", item.key))
            })?);
        }
        for (item, value) in page.items.into_iter().zip(values) {
            let Some(value) = value else {
                return Err(
                    client.unexpected(format!("the listing left out the value of {:?}", item.key))
                );
            };
            let ttl = item.ttl();
            out.json(&Record::new(item.key.into_owned(), &value, ttl, now))?;
        }
        out.flush()?;
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}
