//! Self-contained HTML reports: the dashboard's stylesheet, uPlot and rendering code inlined with
//! the JSON report, so one file opens anywhere (a CI artefact, an e-mail) with nothing to fetch;
//! and Markdown documents (model cards) as pages with the same stylesheet.

use serde::Serialize;

const STYLES: [&str; 2] =
    [include_str!("../www/dashboard/vendor/uPlot.min.css"), include_str!("../www/dashboard/style.css")];
const SCRIPTS: [&str; 3] = [
    include_str!("../www/dashboard/vendor/uPlot.iife.min.js"),
    include_str!("../www/dashboard/common.js"),
    include_str!("../www/dashboard/report.js"),
];

/// The page for `report`, drawn by `www/dashboard/report.js`.
pub fn drift_report(title: &str, report: &impl Serialize) -> serde_json::Result<String> {
    // Inside <script>, only `</` can end the element early: JSON allows writing it `<\/`.
    let data = serde_json::to_string(report)?.replace("</", "<\\/");
    let mut page = String::with_capacity(data.len() + 64 * 1024);
    page.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    page.push_str(&escape(title));
    page.push_str("</title>\n<link rel=\"icon\" href=\"data:,\">\n");
    for style in STYLES {
        page.push_str("<style>\n");
        page.push_str(style);
        page.push_str("\n</style>\n");
    }
    page.push_str("</head>\n<body>\n<main id=\"main\"></main>\n<script id=\"report\" type=\"application/json\">");
    page.push_str(&data);
    page.push_str("</script>\n");
    for script in SCRIPTS {
        page.push_str("<script>\n");
        page.push_str(script);
        page.push_str("\n</script>\n");
    }
    page.push_str("</body>\n</html>\n");
    Ok(page)
}

/// A Markdown document (tables allowed) as one page in the dashboard's style. Raw HTML in the
/// text is shown as text, never interpreted: the document quotes file and column names.
pub fn markdown_page(title: &str, markdown: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser};
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut body = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut body, events);
    let mut page = String::with_capacity(body.len() + 16 * 1024);
    page.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    page.push_str(&escape(title));
    page.push_str("</title>\n<link rel=\"icon\" href=\"data:,\">\n<style>\n");
    page.push_str(STYLES[1]);
    page.push_str("\n</style>\n</head>\n<body>\n<main id=\"main\">\n");
    page.push_str(&body);
    page.push_str("</main>\n</body>\n</html>\n");
    page
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
