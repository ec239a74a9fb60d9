//! The page frame and small shared pieces of HTML (maud escapes every value it is given). No external
//! CDN, font or script: the stylesheet and the one script are served by the box.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use outpost_sync::record::Role;

use crate::{
    app::accounts::Staff,
    base::{
        i18n::{t, td, Lang},
        validate::Problem,
    },
};

pub const CSS: &str = include_str!("../../assets/app.css");
pub const JS: &str = include_str!("../../assets/app.js");

/// A full page. `staff` decides the navigation; `csrf` is for the logout form.
pub fn page(lang: Lang, staff: Option<&Staff>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Outpost" }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                header {
                    a.brand href="/" { (t(lang, "app")) }
                    @if let Some(s) = staff {
                        // On a phone the menu is one button (no script: a checkbox and its label).
                        input #menu-toggle type="checkbox" hidden;
                        label.menu-button for="menu-toggle" { "☰ " (t(lang, "nav.menu")) }
                        nav #menu {
                            a href="/" { (t(lang, "nav.dashboard")) }
                            a href="/people" { (t(lang, "nav.people")) }
                            a href="/alerts" { (t(lang, "nav.alerts")) }
                            a href="/followup" { (t(lang, "nav.followup")) }
                            a href="/testing" { (t(lang, "nav.testing")) }
                            a href="/reports" { (t(lang, "nav.reports")) }
                            a href="/spotchecks" { (t(lang, "nav.spotchecks")) }
                            a href="/checkin" { (t(lang, "nav.checkin")) }
                            a href="/bands" { (t(lang, "nav.bands")) }
                            a href="/outbox" { (t(lang, "nav.outbox")) }
                            a href="/inbox" { (t(lang, "nav.inbox")) }
                            a href="/health" { (t(lang, "nav.health")) }
                            @if s.role == Role::Admin {
                                a href="/users" { (t(lang, "nav.users")) }
                                a href="/audit" { (t(lang, "nav.audit")) }
                                a href="/mqtt" { "MQTT" }
                            }
                            form method="post" action="/logout" {
                                (csrf_field(s.csrf.as_deref().unwrap_or("")))
                                button type="submit" { (t(lang, "nav.logout")) " (" (s.username) ")" }
                            }
                        }
                    }
                    a href=(format!("/lang/{}", lang.other().code())) { (t(lang, "lang.switch")) }
                }
                main { (body) }
                script src="/static/app.js" {}
            }
        }
    }
}

/// One page of `all`: page `asked` (from 1, clamped) of `per` rows; with the page and the count.
pub fn page_of<T>(all: &[T], asked: Option<usize>, per: usize) -> (&[T], usize, usize) {
    let pages = all.len().div_ceil(per).max(1);
    let page = asked.unwrap_or(1).clamp(1, pages);
    (&all[(page - 1) * per..(page * per).min(all.len())], page, pages)
}

/// The links to the previous and next pages of a list of `total`, `id` for the element.
pub fn pager(
    lang: Lang,
    id: &str,
    (page, pages, total): (usize, usize, usize),
    link: impl Fn(usize) -> String,
) -> Markup {
    html! {
        @if pages > 1 {
            p.inline id=(id) {
                @if page > 1 { a.button.secondary href=(link(page - 1)) rel="prev" { "‹" } }
                " " (t(lang, "common.page")) " " (page) " / " (pages) " (" (total) ") "
                @if page < pages { a.button.secondary href=(link(page + 1)) rel="next" { "›" } }
            }
        }
    }
}

pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

pub fn problems(lang: Lang, problems: &[Problem]) -> Markup {
    html! {
        @if !problems.is_empty() {
            div.problems role="alert" {
                ul.plain { @for p in problems { li { (p.text(lang)) } } }
            }
        }
    }
}

pub fn error_page(lang: Lang, list: &[Problem]) -> Markup {
    page(
        lang,
        None,
        t(lang, "error.title"),
        html! {
            h1 { (t(lang, "error.title")) }
            (problems(lang, list))
            p { a href="/" { (t(lang, "common.back")) } }
        },
    )
}

pub fn badge(lang: Lang, class: &str, key: &str) -> Markup {
    html! { span class=(format!("badge {class}")) { (td(lang, key)) } }
}

/// An ID number with all but its last three characters hidden.
pub fn masked(id_number: &str) -> String {
    let n = id_number.chars().count();
    id_number.chars().enumerate().map(|(i, c)| if i + 3 < n { '•' } else { c }).collect()
}

/// An SVG QR code (inline, no external service).
pub fn qr_svg(data: &str) -> Markup {
    match qrcode::QrCode::new(data.as_bytes()) {
        Ok(code) => PreEscaped(
            code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).quiet_zone(true).build(),
        ),
        Err(_) => html! {},
    }
}
