//! A picture as a list of shapes in pixel coordinates, and its rendering to
//! PNG or SVG bytes through plotters.
//!
//! The chart is laid out once, as data ([`Picture`]); each backend only
//! replays the list. Rectangles and text are nearly all a Gantt chart needs
//! (thin straight lines hatch the bars of a deadlock; comparison charts add
//! thick lines and dots), and
//! plain pixel coordinates keep a million-interval trace cheap: there is no
//! chart coordinate system to map through.

use plotters::backend::{BitMapBackend, DrawingBackend, SVGBackend};
use plotters::coord::Shift;
use plotters::drawing::{DrawingArea, DrawingAreaErrorKind, IntoDrawingArea};
use plotters::element::{Circle, PathElement, Rectangle, Text};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, RGBColor};

use super::font;
use super::palette::WHITE;

/// Horizontal alignment of a text on its anchor point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Center,
    Right,
}

/// One thing to draw.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Shape {
    /// A filled rectangle covering the pixels `[x0, x1) × [y0, y1)`.
    Rect {
        x0: i32,
        y0: i32,
        x1: i32,
        y1: i32,
        color: RGBColor,
    },
    /// A straight line one pixel wide from `from` to `to`, both included.
    Line {
        from: (i32, i32),
        to: (i32, i32),
        color: RGBColor,
    },
    /// Connected straight segments `width` pixels wide (a line of a
    /// comparison chart).
    Polyline {
        points: Vec<(i32, i32)>,
        width: u32,
        color: RGBColor,
    },
    /// A filled disc (a point of a comparison chart).
    Dot {
        center: (i32, i32),
        radius: u32,
        color: RGBColor,
    },
    /// A line of text whose middle is at height `y`.
    Text {
        text: String,
        x: i32,
        y: i32,
        size: f64,
        align: Align,
        color: RGBColor,
    },
}

/// A laid-out chart: its size and what to draw, in order, on a white page.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Picture {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) shapes: Vec<Shape>,
}

impl Picture {
    /// Every text drawn, in drawing order (for tests).
    #[cfg(test)]
    pub(crate) fn texts(&self) -> Vec<&str> {
        self.shapes
            .iter()
            .filter_map(|s| match s {
                Shape::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Adds a filled rectangle; empty ones are dropped.
    pub(crate) fn rect(&mut self, x0: i32, y0: i32, x1: i32, y1: i32, color: RGBColor) {
        if x1 > x0 && y1 > y0 {
            self.shapes.push(Shape::Rect {
                x0,
                y0,
                x1,
                y1,
                color,
            });
        }
    }

    /// Adds a straight line one pixel wide.
    pub(crate) fn line(&mut self, from: (i32, i32), to: (i32, i32), color: RGBColor) {
        self.shapes.push(Shape::Line { from, to, color });
    }

    /// Adds connected segments `width` pixels wide; fewer than two points
    /// draw nothing.
    pub(crate) fn polyline(&mut self, points: Vec<(i32, i32)>, width: u32, color: RGBColor) {
        if points.len() >= 2 {
            self.shapes.push(Shape::Polyline {
                points,
                width,
                color,
            });
        }
    }

    /// Adds a filled disc.
    pub(crate) fn dot(&mut self, center: (i32, i32), radius: u32, color: RGBColor) {
        self.shapes.push(Shape::Dot {
            center,
            radius,
            color,
        });
    }

    /// Adds a text centred vertically on `y`; empty ones are dropped.
    pub(crate) fn text(
        &mut self,
        text: impl Into<String>,
        (x, y): (i32, i32),
        size: f64,
        align: Align,
        color: RGBColor,
    ) {
        let text = text.into();
        if !text.is_empty() {
            self.shapes.push(Shape::Text {
                text,
                x,
                y,
                size,
                align,
                color,
            });
        }
    }

    /// The picture as PNG bytes (8-bit RGB).
    pub(crate) fn to_png(&self) -> Result<Vec<u8>, String> {
        let (w, h) = (self.width, self.height);
        let mut pixels = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            self.draw(&root, Flavor::Bitmap)
                .map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())?;
        }
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
        Ok(bytes)
    }

    /// The picture as an SVG document.
    pub(crate) fn to_svg(&self) -> Result<Vec<u8>, String> {
        let mut svg = String::new();
        {
            let root =
                SVGBackend::with_string(&mut svg, (self.width, self.height)).into_drawing_area();
            self.draw(&root, Flavor::Svg).map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())?;
        }
        Ok(svg.into_bytes())
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        flavor: Flavor,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        for shape in &self.shapes {
            match shape {
                &Shape::Rect {
                    x0,
                    y0,
                    x1,
                    y1,
                    color,
                } => root.draw(&Rectangle::new([(x0, y0), (x1, y1)], color.filled()))?,
                &Shape::Line { from, to, color } => {
                    root.draw(&PathElement::new(vec![from, to], color.stroke_width(1)))?
                }
                Shape::Polyline {
                    points,
                    width,
                    color,
                } => root.draw(&PathElement::new(
                    points.clone(),
                    color.stroke_width(*width),
                ))?,
                &Shape::Dot {
                    center,
                    radius,
                    color,
                } => root.draw(&Circle::new(center, radius, color.filled()))?,
                Shape::Text {
                    text,
                    x,
                    y,
                    size,
                    align,
                    color,
                } => {
                    let h = match align {
                        Align::Left => HPos::Left,
                        Align::Center => HPos::Center,
                        Align::Right => HPos::Right,
                    };
                    let (y, v) = flavor.text_anchor(*y, *size);
                    let style = font::style(*size * flavor.size_factor())
                        .color(color)
                        .pos(Pos::new(h, v));
                    root.draw(&Text::new(text.as_str(), (*x, y), style))?;
                }
            }
        }
        Ok(())
    }
}

/// Where a backend puts text relative to its anchor.
#[derive(Clone, Copy, Debug)]
enum Flavor {
    /// plotters rasterizes with the bundled font; with a top anchor the
    /// baseline falls half the size below it.
    Bitmap,
    /// The SVG viewer draws the text; a centre anchor puts the middle of the
    /// lower-case letters on it.
    Svg,
}

impl Flavor {
    /// What to multiply a text size by so that the font's em is the same
    /// on both backends: plotters rasterizes at an ascent-to-descent height
    /// of `size` (1.164 em for DejaVu Sans) but writes SVG font sizes of
    /// `size / 1.24`.
    fn size_factor(self) -> f64 {
        match self {
            Flavor::Bitmap => 1.0,
            Flavor::Svg => 1.24 / 1.164,
        }
    }

    /// The anchor that puts the middle of a line of text of `size` at `y`.
    fn text_anchor(self, y: i32, size: f64) -> (i32, VPos) {
        match self {
            // The visual middle of mixed-case text sits about 0.29 of the
            // size above the baseline.
            Flavor::Bitmap => (y - (0.21 * size).round() as i32, VPos::Top),
            Flavor::Svg => (y, VPos::Center),
        }
    }
}
