//! What alphabet an SMS needs and how many messages it takes (3GPP TS 23.038): GSM-7 (160
//! characters in one SMS, 153 each when split; the extension table's characters count twice)
//! when every character is in it, UCS-2 otherwise (70 in one, 67 each when split; Hindi is
//! always UCS-2).

/// The GSM 03.38 default alphabet.
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡\
                     ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table (an escape and the character: two septets each).
const EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// How an SMS is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// The alphabet `text` needs.
pub fn encoding(text: &str) -> Encoding {
    if text
        .chars()
        .all(|c| BASIC.contains(c) || EXTENSION.contains(c))
    {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// The length of `text` in its encoding's units (septets, or UTF-16 code units).
pub fn units(text: &str) -> usize {
    match encoding(text) {
        Encoding::Gsm7 => text
            .chars()
            .map(|c| if EXTENSION.contains(c) { 2 } else { 1 })
            .sum(),
        Encoding::Ucs2 => text.encode_utf16().count(),
    }
}

/// How many SMS `text` takes.
pub fn segments(text: &str) -> usize {
    let (single, part) = match encoding(text) {
        Encoding::Gsm7 => (160, 153),
        Encoding::Ucs2 => (70, 67),
    };
    let n = units(text);
    if n <= single { 1 } else { n.div_ceil(part) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_counts_septets_and_unicode_counts_utf16_units() {
        assert_eq!(encoding("Balance: Rs 1,23,456.78"), Encoding::Gsm7);
        assert_eq!(units("a[b]"), 6);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"[".repeat(80)), 1);
        assert_eq!(segments(&"[".repeat(81)), 2);
        // ₹ and backquotes are not GSM-7
        assert_eq!(encoding("₹500"), Encoding::Ucs2);
        assert_eq!(encoding("`"), Encoding::Ucs2);
        let hindi = "शेष राशि";
        assert_eq!(encoding(hindi), Encoding::Ucs2);
        assert_eq!(units(hindi), 8);
        assert_eq!(segments(&"क".repeat(70)), 1);
        assert_eq!(segments(&"क".repeat(71)), 2);
        assert_eq!(segments(&"क".repeat(134)), 2);
        assert_eq!(segments(&"क".repeat(135)), 3);
    }
}
