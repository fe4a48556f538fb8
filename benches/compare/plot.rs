//! `target/compare/throughput.png`: throughput (million operations per
//! second, all threads together, log scale) per workload, thread count and
//! peer, one panel per workload.
//!
//! plotters is built without its system-font backends (no fontconfig):
//! text is drawn with `ab_glyph` from a TTF loaded at run time from the
//! usual system paths (DejaVu Sans). If none is found the chart is drawn
//! without text and the report's tables carry the labels.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::report::Cell;
use crate::workloads::Workload;

const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Registers a sans-serif font for plotters; `false` if none was found.
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
    const PALETTE: [RGBColor; 9] = [
        RGBColor(214, 39, 40),   // core: red
        RGBColor(255, 152, 150), // core without timeouts: light red
        RGBColor(31, 119, 180),  // blue
        RGBColor(255, 127, 14),  // orange
        RGBColor(44, 160, 44),   // green
        RGBColor(148, 103, 189), // purple
        RGBColor(140, 86, 75),   // brown
        RGBColor(127, 127, 127), // grey
        RGBColor(23, 190, 207),  // cyan
    ];
    PALETTE[i % PALETTE.len()]
}

/// Draws the chart; returns whether text could be drawn.
pub fn draw(
    path: &Path,
    cells: &[Cell],
    peers: &[&'static str],
    threads: &[usize],
) -> Result<bool, Box<dyn Error>> {
    let text = load_font();
    let root = BitMapBackend::new(path, (1800, 1000)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((2, 4));
    for (panel, w) in panels.iter().zip(Workload::ALL) {
        let values: Vec<f64> = cells
            .iter()
            .filter(|c| c.workload == w)
            .map(|c| c.mops_per_s)
            .collect();
        if values.is_empty() {
            continue;
        }
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min) / 2.0;
        let hi = values.iter().copied().fold(0.0, f64::max) * 2.0;
        let mut builder = ChartBuilder::on(panel);
        builder.margin(12);
        if text {
            builder
                .caption(format!("{} (Mops/s)", w.label()), ("sans-serif", 17))
                .y_label_area_size(55)
                .x_label_area_size(24);
        }
        let mut chart =
            builder.build_cartesian_2d(0f64..threads.len() as f64, (lo..hi).log_scale())?;
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .disable_x_axis()
            .light_line_style(WHITE);
        if text {
            mesh.y_label_formatter(&|v| {
                if *v >= 1.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.3}")
                }
            })
            .y_label_style(("sans-serif", 13));
        } else {
            mesh.y_labels(0);
        }
        mesh.draw()?;
        let width = 0.8 / peers.len() as f64;
        for (ti, t) in threads.iter().enumerate() {
            for (pi, peer) in peers.iter().enumerate() {
                let Some(c) = cells
                    .iter()
                    .find(|c| c.workload == w && c.threads == *t && c.peer == *peer)
                else {
                    continue;
                };
                let x0 = ti as f64 + 0.1 + pi as f64 * width;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, lo), (x0 + width * 0.9, c.mops_per_s)],
                    color(pi).filled(),
                )))?;
            }
            if text {
                // Under the axis, in the panel's label area (pixels).
                let (x, y) = chart.backend_coord(&(ti as f64 + 0.35, lo));
                root.draw(&Text::new(
                    format!("{t} thread{}", if *t == 1 { "" } else { "s" }),
                    (x, y + 6),
                    ("sans-serif", 14).into_font(),
                ))?;
            }
        }
    }
    // The legend, in the eighth panel.
    if let Some(legend) = panels.get(7) {
        for (i, peer) in peers.iter().enumerate() {
            let y = 40 + i as i32 * 40;
            legend.draw(&Rectangle::new([(40, y), (70, y + 24)], color(i).filled()))?;
            if text {
                legend.draw(&Text::new(
                    peer.to_string(),
                    (85, y + 2),
                    ("sans-serif", 20).into_font(),
                ))?;
            }
        }
        if text {
            legend.draw(&Text::new(
                "higher is better; log scale".to_string(),
                (40, 50 + peers.len() as i32 * 40),
                ("sans-serif", 16).into_font(),
            ))?;
        }
    }
    root.present()?;
    Ok(text)
}
