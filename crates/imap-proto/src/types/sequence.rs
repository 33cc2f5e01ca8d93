//! Sequence sets (`sequence-set`): message numbers or UIDs, ranges, `*` and `$`.

use std::fmt;
use std::num::NonZeroU32;

use super::ValidationError;

/// One end of a range: a non-zero number, or `*` (the largest number in use).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SeqNum {
    /// A message sequence number or UID (never 0).
    Value(NonZeroU32),
    /// `*`
    Asterisk,
}

impl SeqNum {
    /// Builds a number, rejecting 0.
    pub fn new(n: u32) -> Result<Self, ValidationError> {
        NonZeroU32::new(n)
            .map(Self::Value)
            .ok_or(ValidationError::OutOfRange {
                what: "sequence number",
                value: 0,
            })
    }

    /// Resolves `*` to `largest`.
    #[must_use]
    pub fn resolve(self, largest: u32) -> u32 {
        match self {
            Self::Value(v) => v.get(),
            Self::Asterisk => largest,
        }
    }

    fn order_key(self) -> u64 {
        match self {
            Self::Value(v) => u64::from(v.get()),
            Self::Asterisk => u64::MAX,
        }
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(v) => write!(f, "{v}"),
            Self::Asterisk => f.write_str("*"),
        }
    }
}

/// A single number (`first == last`) or an inclusive range. Ranges are stored low-to-high:
/// `5:3` and `3:5` are the same range (RFC 9051 `seq-range`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SeqRange {
    first: SeqNum,
    last: SeqNum,
}

impl SeqRange {
    /// A range between `a` and `b`, in either order.
    #[must_use]
    pub fn new(a: SeqNum, b: SeqNum) -> Self {
        if a.order_key() <= b.order_key() {
            Self { first: a, last: b }
        } else {
            Self { first: b, last: a }
        }
    }

    /// A single number.
    #[must_use]
    pub fn single(n: SeqNum) -> Self {
        Self { first: n, last: n }
    }

    /// The lower end (as written, `*` sorts last).
    #[must_use]
    pub fn first(&self) -> SeqNum {
        self.first
    }

    /// The upper end.
    #[must_use]
    pub fn last(&self) -> SeqNum {
        self.last
    }

    /// Whether `n` is inside the range, `*` meaning `largest`.
    #[must_use]
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        let a = self.first.resolve(largest);
        let b = self.last.resolve(largest);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        (lo..=hi).contains(&n)
    }
}

impl fmt::Display for SeqRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}:{}", self.first, self.last)
        }
    }
}

/// A `sequence-set`: a non-empty list of numbers and ranges, or `$` (the result saved by
/// `SEARCH RETURN (SAVE)`, RFC 5182).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum SequenceSet {
    /// A list of numbers and ranges, never empty.
    Set(Vec<SeqRange>),
    /// `$`
    Saved,
}

impl SequenceSet {
    /// Builds a set from ranges; fails on an empty list.
    pub fn new(ranges: Vec<SeqRange>) -> Result<Self, ValidationError> {
        if ranges.is_empty() {
            return Err(ValidationError::Empty {
                what: "sequence set",
            });
        }
        Ok(Self::Set(ranges))
    }

    /// A set with one number.
    pub fn single(n: u32) -> Result<Self, ValidationError> {
        Ok(Self::Set(vec![SeqRange::single(SeqNum::new(n)?)]))
    }

    /// A set with one range `a:b`.
    pub fn range(a: u32, b: u32) -> Result<Self, ValidationError> {
        Ok(Self::Set(vec![SeqRange::new(
            SeqNum::new(a)?,
            SeqNum::new(b)?,
        )]))
    }

    /// `1:*`, every message.
    #[must_use]
    pub fn all() -> Self {
        Self::Set(vec![SeqRange::new(
            SeqNum::Value(NonZeroU32::MIN),
            SeqNum::Asterisk,
        )])
    }

    /// The ranges, or `None` for `$`.
    #[must_use]
    pub fn ranges(&self) -> Option<&[SeqRange]> {
        match self {
            Self::Set(r) => Some(r),
            Self::Saved => None,
        }
    }

    /// Whether every number of the set is a message sequence number of a mailbox with
    /// `count` messages: none above `count`, and no `*` when it is empty. RFC 9051 section
    /// 9 (`seq-number`) says a server should answer `BAD` to a command that uses one that
    /// is not. `$` (a saved result) always is.
    #[must_use]
    pub fn within(&self, count: u32) -> bool {
        let ok = |n: SeqNum| match n {
            SeqNum::Value(v) => v.get() <= count,
            SeqNum::Asterisk => count > 0,
        };
        self.ranges()
            .is_none_or(|r| r.iter().all(|r| ok(r.first) && ok(r.last)))
    }

    /// Whether `n` is in the set, `*` meaning `largest`; `$` contains nothing here.
    #[must_use]
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.ranges()
            .is_some_and(|r| r.iter().any(|r| r.contains(n, largest)))
    }

    /// Iterates the numbers of the set in the order written, with `*` as `largest`,
    /// without materialising ranges. `$` yields nothing.
    pub fn iter(&self, largest: u32) -> impl Iterator<Item = u32> + '_ {
        self.ranges().unwrap_or(&[]).iter().flat_map(move |r| {
            let a = r.first.resolve(largest);
            let b = r.last.resolve(largest);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            lo..=hi
        })
    }
}

impl fmt::Display for SequenceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Saved => f.write_str("$"),
            Self::Set(ranges) => {
                for (i, r) in ranges.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{r}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_a_mailbox_of_n_messages() {
        let set = |a, b| SequenceSet::new(vec![SeqRange::new(a, b)]).unwrap();
        let n = |v| SeqNum::new(v).unwrap();
        assert!(set(n(1), SeqNum::Asterisk).within(1));
        assert!(!set(n(1), SeqNum::Asterisk).within(0));
        assert!(!set(SeqNum::Asterisk, SeqNum::Asterisk).within(0));
        assert!(set(n(2), n(3)).within(3));
        assert!(!set(n(2), n(4)).within(3));
        assert!(!set(n(4), SeqNum::Asterisk).within(3));
        assert!(SequenceSet::Saved.within(0));
    }
}
