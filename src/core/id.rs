//! Session ids: 128 bits from the OS CSPRNG, written as a canonical UUID v4.

use std::fmt;
use std::str::FromStr;

/// The length of a session id's text form: a hyphenated UUID, 36 ASCII
/// characters (`xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx`, lowercase hex).
pub const SESSION_ID_LEN: usize = 36;

/// A session id: a random (version 4) UUID, 122 bits of it from the
/// operating system's CSPRNG, so ids cannot be guessed or enumerated.
///
/// Its text form (what goes in the `Mcp-Session-Id` header, MCP
/// 2025-06-18 "Streamable HTTP: Session Management", which asks for a
/// "globally unique and cryptographically secure" id of visible ASCII) is the
/// canonical lowercase hyphenated UUID. [`SessionId::parse`] accepts that
/// form only.
///
/// # Examples
///
/// ```
/// use mcp_session_core::SessionId;
///
/// let id = SessionId::random().unwrap();
/// let text = id.to_string();
/// assert_eq!(text.len(), 36);
/// assert_eq!(SessionId::parse(&text), Ok(id));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u128);

/// Why a text is not a session id. A malformed id is HTTP 400 (MCP
/// Streamable HTTP: a request with an invalid session id is a bad request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text is not 36 bytes long; holds the length seen.
    #[error("a session id is 36 characters, got {0}")]
    Length(usize),
    /// The byte at this index is not a lowercase hex digit (or not `-` where
    /// the hyphenated form has one).
    #[error("invalid character in session id at index {0}")]
    Character(usize),
    /// Well-formed hex, but not a version-4, RFC 9562 variant UUID.
    #[error("session id is not a random (version 4) UUID")]
    NotVersion4,
}

impl ParseError {
    /// The HTTP status for this error: always 400 (Bad Request).
    pub const fn http_status(&self) -> u16 {
        400
    }
}

/// Marks bytes that are not lowercase hex digits.
const INVALID: u8 = 0xFF;

/// Lowercase hex digit → value, anything else → [`INVALID`]. A table keeps
/// the decode branch-free per byte.
const HEX: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

const VERSION_MASK: u128 = 0xF << 76;
const VERSION_4: u128 = 0x4 << 76;
const VARIANT_MASK: u128 = 0b11 << 62;
const VARIANT_RFC: u128 = 0b10 << 62;

impl SessionId {
    /// A new id from the operating system's CSPRNG (`getrandom`), with the
    /// UUID version (4) and variant bits set.
    ///
    /// # Errors
    ///
    /// Returns the OS error if the CSPRNG cannot be read (no entropy source;
    /// practically only in sandboxes that deny `getrandom(2)`).
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(Self(
            uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .as_u128(),
        ))
    }

    /// Parses the canonical text form: exactly 36 bytes, lowercase hex,
    /// hyphens at 8, 13, 18 and 23, version 4, RFC variant. Checks and
    /// decodes a word (8 digits) at a time; anything but 36 bytes is refused
    /// from its length alone; never allocates.
    ///
    /// # Errors
    ///
    /// [`ParseError::Length`] if `text` is not 36 bytes;
    /// [`ParseError::Character`] at the first bad byte (uppercase, braces
    /// and `urn:uuid:` forms are rejected on purpose: one id has one text);
    /// [`ParseError::NotVersion4`] for a well-formed non-v4 UUID.
    ///
    /// # Examples
    ///
    /// ```
    /// use mcp_session_core::{ParseError, SessionId};
    ///
    /// assert!(SessionId::parse("0f8fad5b-d9cb-469f-a165-70867728950e").is_ok());
    /// assert_eq!(SessionId::parse("nope"), Err(ParseError::Length(4)));
    /// assert_eq!(
    ///     SessionId::parse("0F8FAD5B-D9CB-469F-A165-70867728950E"),
    ///     Err(ParseError::Character(1))
    /// );
    /// ```
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        Self::parse_bytes(text.as_bytes())
    }

    /// [`SessionId::parse`] on raw bytes (e.g. an HTTP header value that has
    /// not been checked for UTF-8).
    ///
    /// # Errors
    ///
    /// As [`SessionId::parse`].
    pub fn parse_bytes(text: &[u8]) -> Result<Self, ParseError> {
        let Ok(text) = <&[u8; SESSION_ID_LEN]>::try_from(text) else {
            return Err(ParseError::Length(text.len()));
        };
        // Word at a time (SWAR): four 8-digit words are checked and decoded
        // with a handful of 64-bit operations each, instead of 32 table
        // look-ups.
        let (a, bad_a) = decode_hex_word(join(&text[0..4], &text[4..8]));
        let (b, bad_b) = decode_hex_word(join(&text[9..13], &text[14..18]));
        let (c, bad_c) = decode_hex_word(join(&text[19..23], &text[24..28]));
        let (d, bad_d) = decode_hex_word(join(&text[28..32], &text[32..36]));
        let hyphens = (text[8] ^ b'-') | (text[13] ^ b'-') | (text[18] ^ b'-') | (text[23] ^ b'-');
        if (bad_a | bad_b | bad_c | bad_d) != 0 || hyphens != 0 {
            return Err(ParseError::Character(first_bad_index(text)));
        }
        let value =
            (u128::from(a) << 96) | (u128::from(b) << 64) | (u128::from(c) << 32) | u128::from(d);
        if value & VERSION_MASK != VERSION_4 || value & VARIANT_MASK != VARIANT_RFC {
            return Err(ParseError::NotVersion4);
        }
        Ok(Self(value))
    }

    /// The id as a 128-bit integer (big-endian UUID order).
    pub const fn as_u128(&self) -> u128 {
        self.0
    }

    /// Rebuilds an id from [`SessionId::as_u128`].
    ///
    /// # Errors
    ///
    /// [`ParseError::NotVersion4`] if the bits are not a version-4 UUID.
    pub const fn from_u128(value: u128) -> Result<Self, ParseError> {
        if value & VERSION_MASK != VERSION_4 || value & VARIANT_MASK != VARIANT_RFC {
            return Err(ParseError::NotVersion4);
        }
        Ok(Self(value))
    }

    /// Writes the 36-byte text form into `out` without allocating.
    ///
    /// # Examples
    ///
    /// ```
    /// use mcp_session_core::{SessionId, SESSION_ID_LEN};
    ///
    /// let id = SessionId::random().unwrap();
    /// let mut buf = [0u8; SESSION_ID_LEN];
    /// id.encode(&mut buf);
    /// assert_eq!(std::str::from_utf8(&buf).unwrap(), id.to_string());
    /// ```
    pub fn encode(&self, out: &mut [u8; SESSION_ID_LEN]) {
        uuid::Uuid::from_u128(self.0).hyphenated().encode_lower(out);
    }
}

/// Two 4-byte groups as one big-endian word.
#[inline(always)]
fn join(high: &[u8], low: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..4].copy_from_slice(high);
    word[4..].copy_from_slice(low);
    u64::from_be_bytes(word)
}

/// Decodes 8 lowercase hex digits (big-endian, one per byte of `x`) into
/// 32 bits. The second value is non-zero if any byte is not `0-9a-f`.
///
/// Per byte `c` (all ASCII, checked first, so no addition carries into the
/// next byte): `c + (0x80 - lo)` has its high bit set iff `c >= lo`, and
/// `c + (0x7F - hi)` iff `c > hi`. A digit's value is its low nibble, plus
/// 9 for `a-f`; the nibbles are then packed pairwise into bytes, bytes into
/// 16-bit halves, halves into the word.
#[inline(always)]
fn decode_hex_word(x: u64) -> (u32, u64) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let ascii = !x & HIGH;
    let at_least = |lo: u8| x.wrapping_add((0x80 - u64::from(lo)) * ONES) & HIGH;
    let above = |hi: u8| x.wrapping_add((0x7F - u64::from(hi)) * ONES) & HIGH;
    let digit = at_least(b'0') & !above(b'9');
    let lower = at_least(b'a') & !above(b'f');
    let bad = ((digit | lower) ^ HIGH) | (ascii ^ HIGH);
    let mut n = (x & (0x0F * ONES)) + (lower >> 7) * 9;
    n = (n | (n >> 4)) & 0x00FF_00FF_00FF_00FF;
    n = (n | (n >> 8)) & 0x0000_FFFF_0000_FFFF;
    n = (n | (n >> 16)) & 0x0000_0000_FFFF_FFFF;
    (n as u32, bad)
}

#[cold]
fn first_bad_index(text: &[u8; SESSION_ID_LEN]) -> usize {
    text.iter()
        .enumerate()
        .position(|(pos, &b)| {
            if pos == 8 || pos == 13 || pos == 18 || pos == 23 {
                b != b'-'
            } else {
                HEX[b as usize] == INVALID
            }
        })
        .unwrap_or(0)
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; SESSION_ID_LEN];
        self.encode(&mut buf);
        // The encoder writes only ASCII hex digits and hyphens.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl FromStr for SessionId {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    #[test]
    fn random_ids_round_trip_and_differ() {
        let a = SessionId::random().unwrap();
        let b = SessionId::random().unwrap();
        assert_ne!(a, b);
        for id in [a, b] {
            let text = id.to_string();
            assert_eq!(text.len(), SESSION_ID_LEN);
            assert_eq!(&text[14..15], "4");
            assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"));
            assert_eq!(SessionId::parse(&text), Ok(id));
            assert_eq!(SessionId::from_u128(id.as_u128()), Ok(id));
        }
    }

    /// The rule, written plainly: what the word-at-a-time parser must agree
    /// with on every input.
    fn reference_parse(text: &[u8]) -> Option<u128> {
        if text.len() != SESSION_ID_LEN {
            return None;
        }
        let mut value = 0u128;
        for (pos, &b) in text.iter().enumerate() {
            if [8, 13, 18, 23].contains(&pos) {
                if b != b'-' {
                    return None;
                }
                continue;
            }
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => return None,
            };
            value = (value << 4) | u128::from(digit);
        }
        let v4 = (value >> 76) & 0xF == 4 && (value >> 62) & 0b11 == 0b10;
        v4.then_some(value)
    }

    #[test]
    fn parse_agrees_with_the_plain_rule_on_every_single_byte_change() {
        for _ in 0..20 {
            let id = SessionId::random().unwrap();
            let text = id.to_string().into_bytes();
            assert_eq!(reference_parse(&text), Some(id.as_u128()));
            for pos in 0..SESSION_ID_LEN {
                for byte in 0..=u8::MAX {
                    let mut changed = text.clone();
                    changed[pos] = byte;
                    let ours = SessionId::parse_bytes(&changed).ok().map(|i| i.as_u128());
                    assert_eq!(ours, reference_parse(&changed), "{changed:?}");
                }
            }
        }
    }

    #[test]
    fn parse_accepts_canonical_form_only() {
        let id = SessionId::parse(GOOD).unwrap();
        assert_eq!(id.to_string(), GOOD);
        assert_eq!(SessionId::parse(""), Err(ParseError::Length(0)));
        assert_eq!(
            SessionId::parse(&GOOD.to_uppercase()),
            Err(ParseError::Character(1))
        );
        assert_eq!(
            SessionId::parse(&format!("{{{}}}", &GOOD[..34])),
            Err(ParseError::Character(0))
        );
        assert_eq!(
            SessionId::parse("0f8fad5bd9cb469fa16570867728950e"),
            Err(ParseError::Length(32))
        );
        let no_hyphen = GOOD.replacen('-', "0", 1);
        assert_eq!(SessionId::parse(&no_hyphen), Err(ParseError::Character(8)));
        let bad_char = GOOD.replacen('d', "g", 1);
        assert_eq!(SessionId::parse(&bad_char), Err(ParseError::Character(5)));
        // version 1 and a non-RFC variant
        assert_eq!(
            SessionId::parse("0f8fad5b-d9cb-169f-a165-70867728950e"),
            Err(ParseError::NotVersion4)
        );
        assert_eq!(
            SessionId::parse("0f8fad5b-d9cb-469f-c165-70867728950e"),
            Err(ParseError::NotVersion4)
        );
        // A multi-byte character of the right byte length.
        let unicode = format!("{}é", &GOOD[..34]);
        assert_eq!(unicode.len(), 36);
        assert_eq!(SessionId::parse(&unicode), Err(ParseError::Character(34)));
        assert_eq!(ParseError::Length(0).http_status(), 400);
    }
}
