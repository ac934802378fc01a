//! The report as one HTML file that needs no network: plotly.js is embedded (the plotly
//! crate's `plotly_embed_js`), the figures are tables, the curves are plotly charts.

use plotly::common::Mode;
use plotly::layout::{Axis, AxisType, Layout};
use plotly::{Plot, Scatter};

use super::{Figures, Report};
use crate::model::Decimal;

pub fn page(report: &Report) -> String {
    let mut out = String::with_capacity(8 << 20);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Backtest report</title>\n");
    out.push_str(STYLE);
    out.push_str(&Plot::offline_js_sources());
    out.push_str("</head>\n<body>\n<h1>Backtest report</h1>\n");
    out.push_str(&format!(
        "<p id=\"span\">{} prints from {} to {} (event time, UTC); samples every {} ms. Sharpe and Sortino are on the PnL changes of each sample interval, annualized.</p>\n",
        report.prints,
        time(report.from_ms),
        time(report.to_ms),
        report.interval_ms
    ));
    out.push_str("<h2>Figures</h2>\n<table id=\"figures\">\n<tr><th>strategy</th><th>PnL</th><th>fees</th><th>volume</th><th>turnover</th><th>orders</th><th>fills</th><th>fill ratio</th><th>max drawdown</th><th>Sharpe</th><th>Sortino</th></tr>\n");
    for f in report.strategies.iter().chain([&report.total]) {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&f.name),
            f.pnl,
            f.fees,
            f.volume,
            f.turnover,
            f.orders,
            f.fills,
            optional(f.fill_ratio),
            f.max_drawdown,
            optional(f.sharpe),
            optional(f.sortino)
        ));
    }
    out.push_str("</table>\n<h2>Equity (PnL, quote units)</h2>\n");
    out.push_str(&chart(report, "equity", |f| &f.equity));
    out.push_str("<h2>Drawdown (below the peak so far)</h2>\n");
    out.push_str(&chart(report, "drawdown", |f| &f.drawdown));
    out.push_str(&format!("<h2>Orders (the latest {})</h2>\n<table id=\"orders\">\n<tr><th>strategy</th><th>client order id</th><th>side</th><th>price</th><th>qty</th></tr>\n", report.orders.len()));
    for o in &report.orders {
        let price = o.price.map(|p| p.to_string()).unwrap_or_else(|| "market".into());
        out.push_str(&format!("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n", escape(&o.strategy), escape(&o.client_order_id), o.side, price, o.qty));
    }
    out.push_str(&format!("</table>\n<h2>Fills (the latest {})</h2>\n<table id=\"fills\">\n<tr><th>time</th><th>strategy</th><th>client order id</th><th>side</th><th>price</th><th>qty</th><th>fee</th></tr>\n", report.fills.len()));
    for f in &report.fills {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td></tr>\n",
            time(Some(f.ts_ms)),
            escape(&f.strategy),
            escape(&f.client_order_id),
            f.side,
            f.price,
            f.qty,
            f.fee,
            escape(&f.fee_asset)
        ));
    }
    out.push_str("</table>\n</body>\n</html>\n");
    out
}

/// One line per strategy and one for the total, on a date axis.
fn chart(report: &Report, id: &str, series: impl Fn(&Figures) -> &Vec<(i64, Decimal)>) -> String {
    let mut plot = Plot::new();
    for f in report.strategies.iter().chain([&report.total]) {
        let points = series(f);
        let x: Vec<i64> = points.iter().map(|(t, _)| *t).collect();
        let y: Vec<f64> = points.iter().map(|(_, v)| f64::try_from(*v).unwrap_or(f64::NAN)).collect();
        plot.add_trace(Scatter::new(x, y).name(&f.name).mode(Mode::Lines));
    }
    plot.set_layout(Layout::new().height(420).x_axis(Axis::new().type_(AxisType::Date)));
    plot.to_inline_html(Some(id))
}

fn optional(x: Option<f64>) -> String {
    x.map(|v| v.to_string()).unwrap_or_else(|| "n/a".into())
}

/// `2020-02-22 00:00:02.111`, UTC.
fn time(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "n/a".into() };
    crate::venue::live::clock::iso_ms(ms).replace('T', " ").trim_end_matches('Z').to_string()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str = "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}</style>\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_dates_and_text_is_escaped() {
        assert_eq!(time(Some(1_582_329_602_111)), "2020-02-22 00:00:02.111");
        assert_eq!(time(Some(0)), "1970-01-01 00:00:00.000");
        assert_eq!(escape("<a href=\"x\">&</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
    }
}
