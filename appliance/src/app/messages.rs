//! Messages staff send [M6]: a template (in Vietnamese or English) or their own text, with
//! placeholders filled per person, to one person, a selection, or everyone in a status.

use outpost_sync::{record::Person, WriteSet};

use super::{outbox::Purpose, templates, AppError, AppResult, Outpost};
use crate::base::{i18n::Lang, validate};

impl Outpost {
    /// Queues a message from staff to each of `people`: a template (in `lang`) or their own text,
    /// with placeholders filled per person. One atomic write; returns how many were queued.
    pub async fn send_custom(
        &self,
        people: &[Person],
        template: Option<&str>,
        text: &str,
        lang: Lang,
        by: &str,
    ) -> AppResult<usize> {
        let body = match template.filter(|t| !t.is_empty()) {
            Some(key) => templates::find(key)
                .ok_or_else(|| AppError::invalid("template", "Mẫu tin không tồn tại.", "No such template."))?
                .text(lang)
                .to_owned(),
            None => validate::clip(text, 1000),
        };
        if body.is_empty() {
            return Err(AppError::invalid("text", "Cần nội dung tin nhắn.", "The message needs a text."));
        }
        if people.is_empty() {
            return Err(AppError::invalid("recipients", "Chưa chọn người nhận.", "No recipient was chosen."));
        }
        let mut w = WriteSet::new();
        for p in people {
            let text = templates::render(&body, p, &self.public_url());
            self.queue_sms(&mut w, &p.phone, &text, Purpose::Custom, Some(&p.id))?;
        }
        self.audit(&mut w, by, "sms.custom", template.unwrap_or("text"), &people.len().to_string())?;
        self.commit(w).await?;
        self.wake_outbox();
        self.emit("sms", "custom");
        Ok(people.len())
    }

    /// Queues the SMS that gives `person` their declaration link (and the site's Wi-Fi).
    pub async fn send_link(&self, person: &Person, by: &str) -> AppResult<()> {
        let text = link_sms(&self.personal_link(person), &self.config.site.wifi);
        let mut w = WriteSet::new();
        self.queue_sms(&mut w, &person.phone, &text, Purpose::Custom, Some(&person.id))?;
        self.audit(&mut w, by, "sms.link", &person.id, "")?;
        self.commit(w).await?;
        self.wake_outbox();
        self.emit("sms", "link");
        Ok(())
    }
}

/// The SMS that gives a person their declaration link (and the site's Wi-Fi, if set), without
/// diacritics so it stays one GSM 7-bit part.
pub(crate) fn link_sms(link: &str, wifi: &str) -> String {
    let mut text = format!("Outpost: Khai bao y te hang ngay tai {link}");
    if !wifi.is_empty() {
        text.push_str(&format!(" (Wi-Fi: {})", validate::unaccent(wifi)));
    }
    text
}
