//! Parsers over complete, already framed lines: commands (server side) and replies
//! (client side).

mod command;
mod reply;

pub use command::{command, command_bytes, command_in, decode_sasl, split_line, xtext_decode};
pub use reply::{ReplyLine, reply, reply_line, split_enhanced};
