//! Self-contained HTML reports: the dashboard's stylesheet, uPlot and rendering code inlined with
//! the JSON report, so one file opens anywhere (a CI artefact, an e-mail) with nothing to fetch.

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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
