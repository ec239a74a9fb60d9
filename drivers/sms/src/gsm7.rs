//! The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038 §6.2.1 and §6.2.1.1), and
//! the packing of septets into octets (TS 23.038 §6.1.2.1.1). Pure; no allocation beyond the output.

/// The default alphabet, indexed by septet value (TS 23.038 §6.2.1). 0x1B is the escape to the
/// extension table and never stands for a character itself.
const DEFAULT: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The escape septet.
pub const ESC: u8 = 0x1B;

/// The extension table (TS 23.038 §6.2.1.1): septet after ESC → character.
const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{c}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// The septets for one character: one from the default table, or ESC and one from the extension
/// table. `None` when the character has no GSM 7-bit form.
pub fn encode_char(c: char) -> Option<Septets> {
    if c == '\u{1b}' {
        return None;
    }
    if let Some(i) = DEFAULT.iter().position(|d| *d == c) {
        return Some(Septets::One(i as u8));
    }
    EXTENSION.iter().find(|(_, e)| *e == c).map(|(s, _)| Septets::Two(ESC, *s))
}

/// One character's septets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Septets {
    One(u8),
    Two(u8, u8),
}

impl Septets {
    pub fn len(self) -> usize {
        match self {
            Septets::One(_) => 1,
            Septets::Two(..) => 2,
        }
    }
    pub fn is_empty(self) -> bool {
        false
    }
    pub fn push_to(self, out: &mut Vec<u8>) {
        match self {
            Septets::One(a) => out.push(a),
            Septets::Two(a, b) => out.extend([a, b]),
        }
    }
}

/// Whether every character of `text` has a GSM 7-bit form.
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| encode_char(c).is_some())
}

/// Septets back to text. An unknown extension septet reads as its default-table character and a
/// trailing lone ESC as a space, as TS 23.038 §6.2.1.1 asks of receivers.
pub fn decode(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut i = 0;
    while i < septets.len() {
        let s = septets[i] & 0x7F;
        if s == ESC {
            match septets.get(i + 1) {
                Some(next) => {
                    let next = next & 0x7F;
                    match EXTENSION.iter().find(|(e, _)| *e == next) {
                        Some((_, c)) => out.push(*c),
                        None => out.push(DEFAULT[usize::from(next)]),
                    }
                    i += 2;
                    continue;
                }
                None => out.push(' '),
            }
        } else {
            out.push(DEFAULT[usize::from(s)]);
        }
        i += 1;
    }
    out
}

/// Packs septets into octets, starting `fill_bits` (0–6) into the first octet: the fill bits that align
/// the text after a user data header (TS 23.040 §9.2.3.24).
pub fn pack(septets: &[u8], fill_bits: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((septets.len() * 7 + fill_bits as usize).div_ceil(8));
    let mut acc: u32 = 0;
    let mut bits = fill_bits;
    for s in septets {
        acc |= u32::from(s & 0x7F) << bits;
        bits += 7;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
    out
}

/// Unpacks `count` septets from `octets`, skipping `fill_bits` first. `None` if the octets are too few.
pub fn unpack(octets: &[u8], fill_bits: u32, count: usize) -> Option<Vec<u8>> {
    let needed_bits = fill_bits as usize + count * 7;
    if needed_bits.div_ceil(8) > octets.len() {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        let bit = fill_bits as usize + n * 7;
        let (byte, shift) = (bit / 8, bit % 8);
        let lo = u16::from(octets[byte]);
        let hi = u16::from(octets.get(byte + 1).copied().unwrap_or(0));
        out.push((((hi << 8 | lo) >> shift) & 0x7F) as u8);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02X}")).collect()
    }

    fn septets(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for c in text.chars() {
            encode_char(c).expect("gsm7").push_to(&mut out);
        }
        out
    }

    #[test]
    fn default_table_is_complete_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in DEFAULT {
            assert!(seen.insert(c), "{c:?} twice");
        }
        assert_eq!(DEFAULT[0x41], 'A');
        assert_eq!(DEFAULT[0x24], '¤', "TS 23.038 §6.2.1: 0x24 is the currency sign, not $");
        assert_eq!(DEFAULT[0x02], '$');
    }

    #[test]
    fn packing_example() {
        // "hellohello", the worked example of 7-bit packing (TS 23.038 §6.1.2.1.1): 10 septets in 9 octets.
        let packed = pack(&septets("hellohello"), 0);
        assert_eq!(hex(&packed), "E8329BFD4697D9EC37");
        assert_eq!(decode(&unpack(&packed, 0, 10).expect("unpack")), "hellohello");
    }

    #[test]
    fn eight_septets_fill_seven_octets() {
        // Eight septets use exactly 56 bits: the eighth septet sits in the top 7 bits of octet 7.
        let packed = pack(&septets("12345678"), 0);
        assert_eq!(hex(&packed), "31D98C56B3DD70");
        assert_eq!(decode(&unpack(&packed, 0, 8).expect("unpack")), "12345678");
    }

    #[test]
    fn fill_bits_after_a_header() {
        // After a 6-octet concatenation header, 1 fill bit aligns the text to a septet boundary.
        let s = septets("Hi");
        let packed = pack(&s, 1);
        assert_eq!(packed, vec![0x90, 0x69]);
        assert_eq!(unpack(&packed, 1, 2).expect("unpack"), s);
    }

    #[test]
    fn extension_characters() {
        assert_eq!(encode_char('€'), Some(Septets::Two(0x1B, 0x65)));
        assert_eq!(encode_char('['), Some(Septets::Two(0x1B, 0x3C)));
        assert_eq!(decode(&septets("{€}[~]|^\\")), "{€}[~]|^\\");
        assert!(encode_char('ạ').is_none(), "Vietnamese letters need UCS-2");
        assert!(encode_char('\u{1b}').is_none());
        assert_eq!(decode(&[0x1B, 0x41]), "A", "an unknown extension reads as the default character");
        assert_eq!(decode(&[0x41, 0x1B]), "A ");
        assert!(unpack(&[0xE8], 0, 2).is_none());
    }
}
