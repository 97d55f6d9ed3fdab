//! SVG plots of a search (plotters): accuracy vs FLOPs and vs params of every
//! candidate coloured by generation, with the Pareto front, and the best fitness per
//! generation of each strategy.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::SearchError;
use crate::search::{Candidate, SearchResult};

fn plot_error(path: &Path, e: impl std::fmt::Display) -> SearchError {
    SearchError::State(format!("plot {}: {e}", path.display()))
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws the legend (lower right).
fn draw_legend<'a, 'b: 'a>(path: &Path, chart: &mut Chart<'a, 'b>) -> Result<(), SearchError> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_error(path, e))
}

/// Renders a 900×600 plot with `draw` in memory, then writes it to `path` atomically
/// (an interrupted run leaves the previous plot, never a truncated one).
fn write_svg(
    path: &Path,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), SearchError>,
) -> Result<(), SearchError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        draw(&root)?;
        root.present().map_err(|e| plot_error(path, e))?;
    }
    crate::write_text(path, &svg)
}

/// Writes `accuracy_vs_flops.svg`, `accuracy_vs_params.svg` (for `results[0]`) and
/// `best_per_generation.svg` (all results) into `dir`; returns their paths.
///
/// # Errors
/// [`SearchError::State`] when a plot cannot be drawn or written, or for no results.
pub fn write_all(dir: &Path, results: &[&SearchResult]) -> Result<Vec<PathBuf>, SearchError> {
    let main = results.first().ok_or_else(|| SearchError::State("no search results to plot".into()))?;
    let flops = dir.join("accuracy_vs_flops.svg");
    scatter(&flops, main, "MFLOPs (MicroNet)", |c| c.cost.flops / 1e6, &main.pareto_flops)?;
    let params = dir.join("accuracy_vs_params.svg");
    scatter(&params, main, "params (M)", |c| c.cost.params / 1e6, &main.pareto_params)?;
    let progress = dir.join("best_per_generation.svg");
    best_per_generation(&progress, results)?;
    Ok(vec![flops, params, progress])
}

fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad)..(hi + pad)
}

fn generation_colour(generation: usize, generations: usize) -> RGBColor {
    let t = generation as f64 / (generations.max(2) - 1) as f64;
    // Blue (first) to red (last).
    RGBColor((40.0 + 200.0 * t) as u8, (60.0 + 40.0 * (1.0 - (2.0 * t - 1.0).abs())) as u8, (230.0 - 200.0 * t) as u8)
}

/// Every candidate of `result` as (x, top-1 %) coloured by generation, and the
/// Pareto front `front` as a line.
fn scatter(
    path: &Path,
    result: &SearchResult,
    x_label: &str,
    x: fn(&Candidate) -> f64,
    front: &[usize],
) -> Result<(), SearchError> {
    let points: Vec<(f64, f64, usize)> =
        result.candidates.iter().map(|c| (x(c), 100.0 * c.evaluation.top1, c.generation)).collect();
    let (x_lo, x_hi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y_lo, y_hi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let generations = result.generations.len();
    write_svg(path, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("{} search: top-1 vs {x_label} (colour: generation, line: Pareto front)", result.strategy),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(padded(x_lo, x_hi), padded(y_lo, y_hi))
            .map_err(|e| plot_error(path, e))?;
        chart.configure_mesh().x_desc(x_label).y_desc("top-1 (%)").draw().map_err(|e| plot_error(path, e))?;
        chart
            .draw_series(
                points.iter().map(|&(px, py, g)| Circle::new((px, py), 3, generation_colour(g, generations).filled())),
            )
            .map_err(|e| plot_error(path, e))?;
        let line: Vec<(f64, f64)> = front.iter().map(|&i| (points[i].0, points[i].1)).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), BLACK.stroke_width(2)))
            .map_err(|e| plot_error(path, e))?
            .label("Pareto front")
            .legend(|(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 20, ly)], BLACK.stroke_width(2)));
        chart
            .draw_series(line.iter().map(|&p| Cross::new(p, 5, BLACK.stroke_width(2))))
            .map_err(|e| plot_error(path, e))?;
        draw_legend(path, &mut chart)
    })
}

/// Best fitness so far against the distinct genomes evaluated (after each generation),
/// one line per strategy: a GA generation evaluates fewer new genomes than a random
/// one (children repeat earlier genomes), so budgets line up on this axis, not on the
/// generation index.
fn best_per_generation(path: &Path, results: &[&SearchResult]) -> Result<(), SearchError> {
    let series: Vec<(String, Vec<(f64, f64)>)> = results
        .iter()
        .map(|r| {
            let points = r.generations.iter().map(|g| (g.total_evaluated as f64, g.best_fitness_so_far)).collect();
            (format!("{} ({} genomes)", r.strategy, r.candidates.len()), points)
        })
        .collect();
    let all = series.iter().flat_map(|s| s.1.iter());
    let (x_hi, y_lo, y_hi) =
        all.fold((1.0f64, f64::INFINITY, f64::NEG_INFINITY), |(x, a, b), p| (x.max(p.0), a.min(p.1), b.max(p.1)));
    write_svg(path, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("best fitness so far, same evaluation budget", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_hi * 1.03, padded(y_lo, y_hi))
            .map_err(|e| plot_error(path, e))?;
        chart
            .configure_mesh()
            .x_desc("distinct genomes evaluated")
            .y_desc("best fitness")
            .draw()
            .map_err(|e| plot_error(path, e))?;
        let palette = [RGBColor(200, 40, 40), RGBColor(40, 80, 200), RGBColor(40, 150, 60), RGBColor(120, 60, 160)];
        for (i, (name, points)) in series.into_iter().enumerate() {
            let colour = palette[i % palette.len()];
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(|e| plot_error(path, e))?
                .label(name)
                .legend(move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 20, ly)], colour.stroke_width(2)));
            chart
                .draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled())))
                .map_err(|e| plot_error(path, e))?;
        }
        draw_legend(path, &mut chart)
    })
}
