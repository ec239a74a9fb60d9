//! The SMS declaration syntax [M4], for quarantined people with a basic phone. Pure.
//!
//! ```text
//! [KB] <temperature> [SPO2 <n>] [symptom codes…]
//! KB 37,5 H S        →  37.5 °C, cough, fever
//! 36.8               →  36.8 °C, no symptoms
//! kb 38 spo2 93 kho tho
//! ```
//!
//! Forgiving: any case, with or without Vietnamese diacritics, commas or points, extra spaces and
//! punctuation. Codes (or the words they stand for): `S` sốt (fever), `H` ho (cough), `DH` đau họng
//! (sore throat), `KT` khó thở (shortness of breath), `MV` mất vị giác/khứu giác (loss of taste or
//! smell), `M` mệt mỏi (fatigue), `TC` tiêu chảy (diarrhoea), `K` khác (other); `BT` or `KHONG` for
//! none. Anything else makes the message a question for staff rather than a declaration.

use outpost_sync::record::Symptom;

use crate::base::validate::{fold, DeclarationInput};

/// Parses a declaration SMS. `None` when the text is not one (it then goes to the staff inbox).
pub fn parse(text: &str) -> Option<DeclarationInput> {
    // "37,5" → "37.5"; every other punctuation separates words.
    let folded = fold(text);
    let chars: Vec<char> = folded.chars().collect();
    let spaced: String = chars
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            ',' if i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit()) =>
            {
                '.'
            }
            '.' | '%' => *c,
            c if c.is_alphanumeric() => *c,
            _ => ' ',
        })
        .collect();
    let mut cleaned = format!(" {} ", spaced.split_whitespace().collect::<Vec<_>>().join(" "));
    for (phrase, code) in [
        ("mat vi giac", "mv"),
        ("mat khuu giac", "mv"),
        ("mat vi", "mv"),
        ("dau hong", "dh"),
        ("kho tho", "kt"),
        ("tieu chay", "tc"),
        ("met moi", "m"),
        ("khai bao", "kb"),
        ("binh thuong", "bt"),
    ] {
        cleaned = cleaned.replace(&format!(" {phrase} "), &format!(" {code} "));
    }
    let mut words = cleaned.split_whitespace().peekable();
    if words.peek() == Some(&"kb") {
        words.next();
    }
    let temperature = words.next().filter(|w| w.trim_end_matches('.').parse::<f64>().is_ok())?;
    let mut input = DeclarationInput {
        temperature: Some(temperature.trim_end_matches('.').to_owned()),
        ..DeclarationInput::default()
    };
    while let Some(w) = words.next() {
        let symptom = match w {
            "spo2" | "sp" | "o2" | "spo" => {
                input.spo2 = Some(words.next()?.trim_end_matches('%').to_owned());
                continue;
            }
            w if w.ends_with('%') && w.trim_end_matches('%').parse::<u8>().is_ok() => {
                input.spo2 = Some(w.trim_end_matches('%').to_owned());
                continue;
            }
            "bt" | "khong" | "0" | "ko" => continue,
            "s" | "sot" => Symptom::Fever,
            "h" | "ho" => Symptom::Cough,
            "dh" => Symptom::SoreThroat,
            "kt" => Symptom::ShortnessOfBreath,
            "mv" => Symptom::LossOfTasteOrSmell,
            "m" | "met" => Symptom::Fatigue,
            "tc" => Symptom::Diarrhoea,
            "k" | "khac" => Symptom::Other,
            _ => return None,
        };
        input.symptoms.push(symptom.as_str().to_owned());
    }
    Some(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, temperature: &str, spo2: Option<&str>, symptoms: &[&str]) {
        let d = parse(text).unwrap_or_else(|| panic!("{text:?} should parse"));
        assert_eq!(d.temperature.as_deref(), Some(temperature), "{text}");
        assert_eq!(d.spo2.as_deref(), spo2, "{text}");
        assert_eq!(d.symptoms, symptoms, "{text}");
    }

    #[test]
    fn forgiving_syntax() {
        check("KB 37,5 H S", "37.5", None, &["cough", "fever"]);
        check("36.8", "36.8", None, &[]);
        check("  kb   38  spo2 93 khó thở ", "38", Some("93"), &["shortness_of_breath"]);
        check("Khai báo: 37.2, ho, đau họng, mệt mỏi", "37.2", None, &["cough", "sore_throat", "fatigue"]);
        check("KB 37 SPO2 97% BT", "37", Some("97"), &[]);
        check("kb 39 96% tc mv k", "39", Some("96"), &["diarrhoea", "loss_of_taste_or_smell", "other"]);
        check("KB 37.", "37", None, &[]);
    }

    #[test]
    fn other_messages_are_not_declarations() {
        for text in
            ["Xin chào, tôi cần thuốc hạ sốt", "KB", "", "khi nao toi duoc ve?", "37 con meo", "kb 37 spo2"]
        {
            assert!(parse(text).is_none(), "{text:?}");
        }
    }
}
