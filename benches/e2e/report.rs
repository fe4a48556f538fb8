//! `e2e-report OUT_DIR RUN.json...`: the end-to-end benchmark's report from
//! the load generator's JSON files: `OUT_DIR/report.md` (the tables),
//! `OUT_DIR/report.json` (every run, every figure) and `OUT_DIR/e2e.png`
//! (server RSS over time, and the victims' `counter` latency over time,
//! one line per server, time 0 = the flood's start).
//!
//! Text in the PNG is drawn with a TTF from the usual system paths (DejaVu
//! Sans); without one the lines are drawn and the legend is left to the
//! report's tables.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::FontStyle;
use serde_json::Value;

const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

fn load_font() -> bool {
    for path in FONT_PATHS {
        if let Ok(bytes) = std::fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

fn color(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(214, 39, 40),   // red
        RGBColor(31, 119, 180),  // blue
        RGBColor(255, 127, 14),  // orange
        RGBColor(44, 160, 44),   // green
        RGBColor(148, 103, 189), // purple
        RGBColor(255, 152, 150), // light red
        RGBColor(140, 86, 75),   // brown
        RGBColor(127, 127, 127), // grey
    ];
    PALETTE[i % PALETTE.len()]
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn mib(v: &Value) -> String {
    format!("{:.0}", f(v) / 1024.0)
}

fn secs(v: &Value) -> String {
    match v.as_f64() {
        Some(s) => format!("{s:.1} s"),
        None => "not back".into(),
    }
}

/// The flood's start, ms since the run's start.
fn flood_start(run: &Value) -> f64 {
    run["phases_ms"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p[0] == "flood")
        .map(|p| f(&p[1]))
        .unwrap_or(0.0)
}

fn markdown(runs: &[Value]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# End-to-end: MCP servers under a session flood\n");
    if let Some(plan) = runs.first().map(|r| &r["plan"]) {
        let _ = writeln!(
            md,
            "Steady: {} open sessions, {} connections calling `echo` for {} s. Flood: {} \
             `initialize` requests over {} connections while {} victim sessions call \
             `counter` every {} ms. Recovery: up to {} s after the flood. Request timeout {} s. \
             Loopback, one machine; RSS from /proc every 100 ms.\n",
            plan["steady_sessions"],
            plan["steady_connections"],
            plan["steady_secs"],
            plan["flood_requests"],
            plan["flood_connections"],
            plan["victims"],
            plan["victim_every_ms"],
            plan["recovery_max_secs"],
            plan["timeout_secs"],
        );
    }
    let _ = writeln!(
        md,
        "| server | steady req/s | p50 ms | p99 ms | RSS MiB | flood 200 / 429 / 503 / other / timeout+failed | flood s | RSS before → peak MiB | victims evicted | victim p99 ms | live after flood | answering | live back | RSS back | RSS end MiB |"
    );
    let _ = writeln!(
        md,
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | --- | --- | --- | ---: |"
    );
    for run in runs {
        let s = &run["steady"];
        let fl = &run["flood"];
        let st = &fl["statuses"];
        let r = &run["recovery"];
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.2} | {:.2} | {} | {} / {} / {} / {} / {} | {:.1} | {} → {} | {}/{} | {:.1} | {} | {} | {} | {} | {} |",
            run["name"].as_str().unwrap_or("?"),
            f(&s["requests_per_sec"]),
            f(&s["latency"]["p50_ms"]),
            f(&s["latency"]["p99_ms"]),
            mib(&s["rss_kib"]),
            st["ok"],
            st["s429"],
            st["s503"],
            f(&st["other"]) + f(&st["s404"]),
            f(&st["timeouts"]) + f(&st["failed"]),
            f(&fl["secs"]),
            mib(&fl["rss_before_kib"]),
            mib(&fl["rss_peak_kib"]),
            fl["victims_evicted"],
            run["plan"]["victims"],
            f(&fl["victim_latency"]["p99_ms"]),
            match fl["live_after"].as_i64() {
                Some(n) => n.to_string(),
                None => "?".into(),
            },
            if fl["answering_after"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            if r["live_back_secs"].is_null() && run["flood"]["live_after"].is_null() {
                "?".into()
            } else {
                secs(&r["live_back_secs"])
            },
            secs(&r["rss_back_secs"]),
            mib(&r["rss_end_kib"]),
        );
    }
    let _ = writeln!(md, "\nServers:\n");
    for run in runs {
        let _ = writeln!(
            md,
            "- **{}**: {}",
            run["name"].as_str().unwrap_or("?"),
            run["config"].as_str().unwrap_or("")
        );
    }
    let _ = writeln!(
        md,
        "\n\"live back\": until the server's live sessions were back to the count before the \
         flood; \"RSS back\": until its RSS was within 10 % + 4 MiB of the RSS before the flood \
         (allocators keep freed pages, so RSS may stay up with no session left). \
         `e2e.png`: RSS and victim latency over time, t = 0 at the flood's start."
    );
    md
}

fn draw(path: &Path, runs: &[Value]) -> Result<(), Box<dyn Error>> {
    let text = load_font();
    let root = BitMapBackend::new(path, (1600, 1000)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(500);
    // RSS over time.
    let mut t_min = 0f64;
    let mut t_max = 1f64;
    let mut rss_max = 1f64;
    let mut lat_max = 1f64;
    for run in runs {
        let start = flood_start(run);
        for p in run["rss"].as_array().into_iter().flatten() {
            let t = (f(&p[0]) - start) / 1000.0;
            t_min = t_min.min(t);
            t_max = t_max.max(t);
            rss_max = rss_max.max(f(&p[1]) / 1024.0);
        }
        for p in run["victims"].as_array().into_iter().flatten() {
            lat_max = lat_max.max(f(&p[1]));
        }
    }
    let panels = [
        (top, "server RSS (MiB)", rss_max * 1.1, false),
        (
            bottom,
            "victim counter latency (ms, log)",
            lat_max * 1.5,
            true,
        ),
    ];
    for (panel, title, y_max, is_latency) in panels {
        let mut builder = ChartBuilder::on(&panel);
        builder.margin(15);
        if text {
            builder
                .caption(
                    format!("{title}; s since the flood began"),
                    ("sans-serif", 20),
                )
                .x_label_area_size(30)
                .y_label_area_size(60);
        }
        if is_latency {
            let mut chart =
                builder.build_cartesian_2d(t_min..t_max, (0.05f64..y_max).log_scale())?;
            let mut mesh = chart.configure_mesh();
            if !text {
                mesh.x_labels(0).y_labels(0);
            }
            mesh.draw()?;
            for (i, run) in runs.iter().enumerate() {
                let start = flood_start(run);
                let points: Vec<(f64, f64)> = run["victims"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p[2] == 200)
                    .map(|p| ((f(&p[0]) - start) / 1000.0, f(&p[1]).max(0.05)))
                    .collect();
                chart.draw_series(points.iter().map(|p| Circle::new(*p, 1, color(i).filled())))?;
            }
        } else {
            let mut chart = builder.build_cartesian_2d(t_min..t_max, 0f64..y_max)?;
            let mut mesh = chart.configure_mesh();
            if !text {
                mesh.x_labels(0).y_labels(0);
            }
            mesh.draw()?;
            for (i, run) in runs.iter().enumerate() {
                let start = flood_start(run);
                let points: Vec<(f64, f64)> = run["rss"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| ((f(&p[0]) - start) / 1000.0, f(&p[1]) / 1024.0))
                    .collect();
                let series =
                    chart.draw_series(LineSeries::new(points, color(i).stroke_width(2)))?;
                if text {
                    let name = run["name"].as_str().unwrap_or("?").to_owned();
                    series.label(name).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color(i).stroke_width(3))
                    });
                }
            }
            if text {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 15))
                    .position(SeriesLabelPosition::UpperRight)
                    .draw()?;
            }
        }
    }
    root.present()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: e2e-report OUT_DIR RUN.json...")?);
    let mut runs = Vec::new();
    for path in args {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        runs.push(serde_json::from_str::<Value>(&text).map_err(|e| format!("{path}: {e}"))?);
    }
    if runs.is_empty() {
        return Err("no run files".into());
    }
    std::fs::create_dir_all(&out)?;
    let md = markdown(&runs);
    std::fs::write(out.join("report.md"), &md)?;
    std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(&runs)?)?;
    draw(&out.join("e2e.png"), &runs)?;
    print!("{md}");
    Ok(())
}
