//! SMS templates staff can send, in Vietnamese and English, with placeholders filled per person:
//! `{name}` (full name, without diacritics), `{room}`, `{link}` (the personal declaration link), `{end}` (planned end of
//! quarantine, dd/mm/yyyy). Texts are unaccented so a message fits one GSM 7-bit part where it can;
//! free text typed by staff is sent as typed (UCS-2 when it has Vietnamese letters). Pure.

use outpost_sync::record::Person;

use crate::base::{i18n::Lang, validate::unaccent};

/// A template: key, label (vi, en), text (vi, en).
pub struct Template {
    pub key: &'static str,
    pub label: (&'static str, &'static str),
    pub text: (&'static str, &'static str),
}

pub const TEMPLATES: &[Template] = &[
    Template {
        key: "declare",
        label: ("Nhắc khai báo y tế", "Declaration reminder"),
        text: (
            "Outpost: Vui long khai bao y te tai {link} hoac nhan tin: KB <nhiet do> <trieu chung>",
            "Outpost: Please declare your health at {link} or reply: KB <temperature> <symptoms>",
        ),
    },
    Template {
        key: "stay",
        label: ("Nhắc ở trong phòng", "Stay in your room"),
        text: (
            "Outpost: De nghi {name} (phong {room}) o trong phong, deo khau trang khi nhan do. Cam on!",
            "Outpost: {name} (room {room}), please stay in your room and wear a mask when receiving items.",
        ),
    },
    Template {
        key: "end",
        label: ("Ngày kết thúc cách ly", "End of quarantine"),
        text: (
            "Outpost: Thoi gian cach ly cua {name} du kien ket thuc ngay {end}. Vui long tiep tuc khai bao den het ngay nay.",
            "Outpost: {name}, your quarantine is planned to end on {end}. Please keep declaring until then.",
        ),
    },
];

pub fn find(key: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.key == key)
}

/// Fills a template (or a staff-typed text, which may use the same placeholders) for one person.
pub fn render(text: &str, person: &Person, public_url: &str) -> String {
    text.replace("{name}", &unaccent(&person.full_name))
        .replace("{room}", &unaccent(&person.room))
        .replace("{link}", &format!("{public_url}/d/{}", person.declare_token))
        .replace("{end}", &person.quarantine_end.format("%d/%m/%Y").to_string())
}

impl Template {
    pub fn text(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Vi => self.text.0,
            Lang::En => self.text.1,
        }
    }
    pub fn label(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Vi => self.label.0,
            Lang::En => self.label.1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_single_gsm_parts_for_a_typical_person() {
        for t in TEMPLATES {
            for lang in [Lang::Vi, Lang::En] {
                let text = t
                    .text(lang)
                    .replace("{name}", "Nguyen Van An")
                    .replace("{room}", "A12")
                    .replace("{link}", &format!("http://outpost.local:8080/d/{}", "a".repeat(32)))
                    .replace("{end}", "04/12/2026");
                let (alphabet, parts) = outpost_sms::pdu::parts_needed(&text);
                assert_eq!(alphabet, outpost_sms::pdu::Alphabet::Gsm7, "{}", t.key);
                assert!(parts <= 1, "{} ({}) takes {parts} parts", t.key, lang.code());
            }
        }
    }
}
