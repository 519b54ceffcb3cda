//! Index recovery as a pure function over the index file's bytes.
//!
//! [`recover_index`] is what [`crate::Store::open`] runs on the bytes it reads from
//! `index.log` (and what the `store_recovery` fuzz target runs on arbitrary bytes): it decodes
//! the header, replays the intact prefix of records with consecutive generations, and
//! classifies whatever follows that prefix as nothing, a torn append ([`Tail::Torn`], safe to
//! drop) or a damaged committed record ([`Tail::Damaged`], kept and reported). See
//! [`crate::format`] for why the two can be told apart.
//!
//! Checksums detect accidental corruption, not tampering (CRC-32 and XXH3 are not MACs).
#![deny(clippy::indexing_slicing)]

use crate::format::{
    has_zero_sector, record_head, IndexHeader, Record, INDEX_HEADER_LEN, RECORD_HEAD,
};
use crate::object::ObjectInfo;
use std::collections::BTreeMap;

/// What follows the committed prefix of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Nothing: the file ends at the last committed record.
    Clean,
    /// An append cut short by a crash (the file ends inside the record, or the record's
    /// unwritten sectors read back as zeros): never committed, safe to drop.
    Torn {
        /// Bytes after the committed prefix.
        bytes: u64,
        /// What was found.
        reason: String,
    },
    /// A complete record, every sector of it written, whose checksum or content is wrong:
    /// a committed record damaged after the fact. Dropping it could lose a committed object.
    Damaged {
        /// Byte offset of the record in the index.
        offset: u64,
        /// Bytes from that offset to the end of the file.
        bytes: u64,
        /// What was expected and what was found.
        reason: String,
    },
}

/// The outcome of replaying an index.
#[derive(Debug, Clone)]
pub struct RecoveredIndex {
    /// The header.
    pub header: IndexHeader,
    /// Live objects after replaying the committed records.
    pub objects: BTreeMap<String, ObjectInfo>,
    /// Committed records replayed.
    pub records: u64,
    /// Bytes of header and committed records: where the next append goes.
    pub committed_len: u64,
    /// Generation of the next record.
    pub next_generation: u64,
    /// What follows the committed prefix.
    pub tail: Tail,
}

/// Why an index cannot be recovered at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexError {
    /// Shorter than its header.
    Truncated {
        /// Bytes needed.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// A damaged header, or a damaged record followed by intact committed ones.
    Corrupt {
        /// Byte offset of the damage.
        offset: u64,
        /// What was expected and what was found.
        reason: String,
    },
    /// An intact header of another format version.
    Version {
        /// Version found.
        found: u32,
    },
}

fn tail_of(buf: &[u8], from: usize) -> &[u8] {
    buf.get(from..).unwrap_or(&[])
}

/// Replays `buf` (the whole index file). Never panics; allocates at most in proportion to
/// `buf`.
pub fn recover_index(buf: &[u8]) -> Result<RecoveredIndex, IndexError> {
    if buf.len() < INDEX_HEADER_LEN {
        return Err(IndexError::Truncated {
            expected: INDEX_HEADER_LEN as u64,
            found: buf.len() as u64,
        });
    }
    let header = match IndexHeader::decode(buf) {
        Ok(h) => h,
        Err((_, Some(found))) => return Err(IndexError::Version { found }),
        Err((reason, None)) => return Err(IndexError::Corrupt { offset: 0, reason }),
    };
    let mut objects = BTreeMap::new();
    let mut records = 0u64;
    let mut at = INDEX_HEADER_LEN;
    let mut gen = header.first_generation;
    let mut tail = Tail::Clean;
    while at < buf.len() {
        let rest = tail_of(buf, at);
        let reason = match Record::decode(rest) {
            Ok((rec, g, used)) if g == gen => {
                match rec {
                    Record::Put(info) => {
                        objects.insert(info.key.clone(), info);
                    }
                    Record::Delete(k) => {
                        objects.remove(&k);
                    }
                    Record::Pad(_) => {}
                }
                at += used;
                gen = gen.wrapping_add(1);
                records += 1;
                continue;
            }
            Ok((_, g, _)) => format!("record generation expected {gen}, found {g}"),
            Err(reason) => reason,
        };
        // A torn write can only be the last record: an intact record after it means the
        // index was damaged, and dropping committed records silently is not allowed.
        if let Some((p, g)) = find_later_record(buf, at + 1, gen) {
            return Err(IndexError::Corrupt {
                offset: at as u64,
                reason: format!(
                    "{reason}; yet a committed record (generation {g}) follows at byte {p}"
                ),
            });
        }
        tail = classify_tail(rest, at as u64, reason);
        break;
    }
    Ok(RecoveredIndex {
        header,
        objects,
        records,
        committed_len: at as u64,
        next_generation: gen,
        tail,
    })
}

/// Classifies the bytes `rest` found at file offset `at`, after the committed prefix, that do
/// not decode as the next record (`reason` says why).
fn classify_tail(rest: &[u8], at: u64, reason: String) -> Tail {
    let torn = |reason: String| Tail::Torn {
        bytes: rest.len() as u64,
        reason,
    };
    if rest.iter().all(|&b| b == 0) {
        return torn(format!(
            "the {} bytes after the last committed record are zeros (an append never written)",
            rest.len()
        ));
    }
    let damaged = |reason: String| Tail::Damaged {
        offset: at,
        bytes: rest.len() as u64,
        reason,
    };
    match record_head(rest) {
        Err(head_reason) => {
            if rest.len() < RECORD_HEAD {
                torn(format!("the file ends inside a record head: {head_reason}"))
            } else if has_zero_sector(rest.get(..RECORD_HEAD).unwrap_or(rest), at) {
                torn(format!(
                    "{head_reason}, with an unwritten (all-zero) sector in the record head"
                ))
            } else {
                damaged(format!(
                    "{head_reason}, in a complete record head with every sector written"
                ))
            }
        }
        Ok((_, total)) => match rest.get(..total) {
            None => torn(format!(
                "the file ends inside the record: its head says {total} bytes, {} are present",
                rest.len()
            )),
            Some(record) if has_zero_sector(record, at) => torn(format!(
                "{reason}, with an unwritten (all-zero) sector in the record"
            )),
            Some(_) => damaged(format!(
                "{reason}, in a complete {total}-byte record with every sector written"
            )),
        },
    }
}

/// An intact record with generation >= `gen` somewhere at or after `from`.
fn find_later_record(buf: &[u8], from: usize, gen: u64) -> Option<(usize, u64)> {
    let magic = b"REC2";
    let mut p = from;
    while p + RECORD_HEAD <= buf.len() {
        if buf.get(p..p + 4) == Some(magic.as_slice()) {
            if let Ok((_, g, _)) = Record::decode(tail_of(buf, p)) {
                if g >= gen {
                    return Some((p, g));
                }
            }
        }
        p += 1;
    }
    None
}
