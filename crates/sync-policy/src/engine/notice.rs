//! Notice messages for the user's INBOX (IMP-3 skipped messages, IMP-5 automatic fetch
//! turned off, MIG-3 migration started / progress / completed / failed), as RFC 5322 text.

use crate::UnixTime;

/// Builds an RFC 5322 message (CRLF line ends, `Content-Type: text/plain; charset=utf-8`)
/// from the mail system to `to`. Non-ASCII in the subject is written as an RFC 2047
/// encoded word; the body lines are kept under 998 octets by folding long paragraphs at
/// spaces.
#[must_use]
pub fn notice_message(to: &str, subject: &str, text: &str, now: UnixTime) -> Vec<u8> {
    let domain = to.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).collect() };
    let mut out = String::new();
    out.push_str(&format!("Date: {}\r\n", rfc5322_date(now)));
    out.push_str(&format!(
        "From: Mail System <MAILER-DAEMON@{}>\r\n",
        clean(domain)
    ));
    out.push_str(&format!("To: <{}>\r\n", clean(to)));
    out.push_str(&format!("Subject: {}\r\n", encode_subject(&clean(subject))));
    out.push_str(&format!(
        "Message-ID: <notice.{}.{}@{}>\r\n",
        now.0,
        super::short_hash(&[subject.as_bytes(), text.as_bytes(), to.as_bytes()], 8),
        clean(domain)
    ));
    out.push_str("Auto-Submitted: auto-generated\r\n");
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    out.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
    for para in text.split('\n') {
        let para = para.trim_end_matches('\r');
        let mut line = String::new();
        for word in para.split(' ') {
            if !line.is_empty() && line.len() + word.len() + 1 > 76 {
                out.push_str(&line);
                out.push_str("\r\n");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&clean(word));
        }
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

fn encode_subject(s: &str) -> String {
    if s.is_ascii() {
        return s.to_owned();
    }
    // RFC 2047 Q encoding, one encoded word per 20 characters to stay under 75 octets.
    let chars: Vec<char> = s.chars().collect();
    let words: Vec<String> = chars
        .chunks(10)
        .map(|chunk| {
            let mut w = String::from("=?UTF-8?Q?");
            for c in chunk {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    if b.is_ascii_alphanumeric() {
                        w.push(char::from(b));
                    } else if b == b' ' {
                        w.push('_');
                    } else {
                        w.push_str(&format!("={b:02X}"));
                    }
                }
            }
            w.push_str("?=");
            w
        })
        .collect();
    words.join("\r\n ")
}

/// `Tue, 1 Jul 2003 10:52:37 +0000` for a Unix time.
#[must_use]
pub fn rfc5322_date(t: UnixTime) -> String {
    let days = t.0.div_euclid(86_400);
    let secs = t.0.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        .get(usize::try_from(days.rem_euclid(7)).unwrap_or(0))
        .copied()
        .unwrap_or("Thu");
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .get(usize::try_from(m.saturating_sub(1)).unwrap_or(0))
    .copied()
    .unwrap_or("Jan");
    format!(
        "{weekday}, {d} {month} {y:04} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(UnixTime(0)), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(UnixTime(1_057_056_757)),
            "Tue, 1 Jul 2003 10:52:37 +0000"
        );
        assert_eq!(
            rfc5322_date(UnixTime(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
    }

    #[test]
    fn notice_is_a_parseable_message() {
        let m = notice_message(
            "a@example.org",
            "Import: 1 message skipped",
            "Too big.",
            UnixTime(0),
        );
        let text = String::from_utf8(m.clone()).unwrap();
        assert!(text.starts_with("Date: Thu, 1 Jan 1970 00:00:00 +0000\r\nFrom: Mail System <MAILER-DAEMON@example.org>\r\nTo: <a@example.org>\r\nSubject: Import: 1 message skipped\r\n"));
        assert!(text.ends_with("\r\n\r\nToo big.\r\n"));
        let parsed = mail_parser::MessageParser::default().parse(&m).unwrap();
        assert_eq!(parsed.subject(), Some("Import: 1 message skipped"));
        assert!(mailstore_core::validate_message(&m, m.len() as u64, 1 << 20).is_ok());
    }

    #[test]
    fn non_ascii_subject_is_encoded() {
        let m = notice_message("a@example.org", "取り込み", "x", UnixTime(0));
        let parsed = mail_parser::MessageParser::default().parse(&m).unwrap();
        assert_eq!(parsed.subject(), Some("取り込み"));
    }
}
