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
        for item in page.items {
            let Some(value) = item.value else {
                return Err(Error::Server {
                    endpoint: client.endpoint().to_string(),
                    status: "200 OK".into(),
                    message: format!("the listing left out the value of {:?}", item.key),
                });
            };
            out.json(&Record::new(item.key, &value, item.meta.ttl, now))?;
        }
        out.flush()?;
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}
