//! `SessionId::parse_bytes` (word-at-a-time) against the rule written
//! plainly, byte by byte: same answer, same error, on every input; an
//! accepted id prints back to the very bytes parsed.

use mcp_session_core::{ParseError, SESSION_ID_LEN, SessionId};

/// The canonical form, one byte at a time: 36 bytes, hyphens at 8, 13, 18,
/// 23, lowercase hex elsewhere, version 4, RFC 9562 variant. Errors as the
/// documented ones: the length, the first bad byte, or not version 4.
pub fn reference_parse(text: &[u8]) -> Result<u128, ParseError> {
    if text.len() != SESSION_ID_LEN {
        return Err(ParseError::Length(text.len()));
    }
    let mut value = 0u128;
    for (pos, &b) in text.iter().enumerate() {
        if matches!(pos, 8 | 13 | 18 | 23) {
            if b != b'-' {
                return Err(ParseError::Character(pos));
            }
            continue;
        }
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return Err(ParseError::Character(pos)),
        };
        value = (value << 4) | u128::from(digit);
    }
    let version = (value >> 76) & 0xF;
    let variant = (value >> 62) & 0b11;
    if version != 4 || variant != 0b10 {
        return Err(ParseError::NotVersion4);
    }
    Ok(value)
}

/// The differential check on one input.
pub fn check(data: &[u8]) {
    let ours = SessionId::parse_bytes(data);
    let reference = reference_parse(data);
    assert_eq!(
        ours.map(|id| id.as_u128()),
        reference,
        "parse_bytes disagrees with the plain rule on {data:?}"
    );
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(
            SessionId::parse(text),
            ours,
            "parse vs parse_bytes on {text:?}"
        );
        assert_eq!(
            text.parse::<SessionId>(),
            ours,
            "FromStr vs parse_bytes on {text:?}"
        );
    }
    if let Ok(id) = ours {
        let mut out = [0u8; SESSION_ID_LEN];
        id.encode(&mut out);
        assert_eq!(&out[..], data, "an accepted id prints back differently");
        assert_eq!(id.to_string().as_bytes(), data);
        assert_eq!(SessionId::from_u128(id.as_u128()), Ok(id));
    }
    // Every 128-bit value (the first 16 bytes, padded): from_u128 accepts
    // exactly the v4 ones, and what it accepts round-trips through text.
    let mut raw = [0u8; 16];
    let n = data.len().min(16);
    raw[..n].copy_from_slice(&data[..n]);
    let value = u128::from_be_bytes(raw);
    let v4 = (value >> 76) & 0xF == 4 && (value >> 62) & 0b11 == 0b10;
    match SessionId::from_u128(value) {
        Ok(id) => {
            assert!(v4, "from_u128 accepted a non-v4 value {value:#x}");
            assert_eq!(SessionId::parse(&id.to_string()), Ok(id));
        }
        Err(e) => {
            assert!(!v4, "from_u128 refused a v4 value {value:#x}");
            assert_eq!(e, ParseError::NotVersion4);
        }
    }
}
