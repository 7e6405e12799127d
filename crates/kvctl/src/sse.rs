//! A reader of Server-Sent Events, as `/v1/watch` sends them: messages of
//! `field: value` lines ended by a blank line; `: ...` lines are comments.

use std::io::BufRead;

/// One message's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// `id:`: for a watch, the revision (the last one seen is where a
    /// reconnection resumes).
    pub id: Option<String>,
    /// `event:`, the event's name.
    pub event: Option<String>,
    /// `data:` lines, joined by newlines; `None` for a message without data.
    pub data: Option<String>,
}

/// Reads messages off a byte stream.
pub struct Reader<R> {
    lines: R,
}

impl<R: BufRead> Reader<R> {
    /// Reads from `lines`.
    pub fn new(lines: R) -> Reader<R> {
        Reader { lines }
    }

    /// The next message with a field; `None` at the end of the stream (a
    /// message cut short by the end is dropped, as the standard says).
    pub fn next_message(&mut self) -> std::io::Result<Option<Message>> {
        let mut message = Message::default();
        let mut fields = 0;
        let mut line = String::new();
        loop {
            line.clear();
            if self.lines.read_line(&mut line)? == 0 {
                return Ok(None);
            }
            let line = line.strip_suffix('\n').unwrap_or(&line);
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                if fields > 0 {
                    return Ok(Some(message));
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            fields += 1;
            match field {
                "id" => message.id = Some(value),
                "event" => message.event = Some(value),
                "data" => {
                    message.data = Some(match message.data.take() {
                        Some(before) => format!("{before}\n{value}"),
                        None => value,
                    })
                }
                // `retry:` and fields the standard does not know are ignored.
                _ => fields -= 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_comments_and_a_cut_off_tail() {
        let stream = ": hello\n\nid: 3\nevent: put\ndata: {\"a\":1}\n\n: keep-alive\n\nid: 4\r\ndata: x\r\ndata: y\r\n\r\nid: 5\ndata: cut";
        let mut reader = Reader::new(stream.as_bytes());
        assert_eq!(
            reader.next_message().unwrap(),
            Some(Message {
                id: Some("3".into()),
                event: Some("put".into()),
                data: Some("{\"a\":1}".into()),
            })
        );
        assert_eq!(
            reader.next_message().unwrap(),
            Some(Message {
                id: Some("4".into()),
                event: None,
                data: Some("x\ny".into()),
            }),
            "CRLF lines, and data lines joined"
        );
        assert_eq!(
            reader.next_message().unwrap(),
            None,
            "the cut message is dropped"
        );
    }
}
