package loadtest

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// plotFloorMS keeps latencies positive on the log axis.
const plotFloorMS = 0.01

// WritePlot draws p50 and p99 latency (ms, log scale) against the offered
// rate, with a dashed line at the p99 threshold, as a PNG at path.
func WritePlot(path string, r *Report) error {
	p := plot.New()
	p.Title.Text = "Latency by offered rate"
	p.X.Label.Text = "offered rate (requests/s)"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())

	p50 := make(plotter.XYs, 0, len(r.Steps))
	p99 := make(plotter.XYs, 0, len(r.Steps))
	xMin, xMax := math.Inf(1), math.Inf(-1)
	for _, s := range r.Steps {
		if s.Requests == 0 {
			continue
		}
		x := float64(s.OfferedRPS)
		xMin, xMax = math.Min(xMin, x), math.Max(xMax, x)
		p50 = append(p50, plotter.XY{X: x, Y: math.Max(s.LatencyMS.P50, plotFloorMS)})
		p99 = append(p99, plotter.XY{X: x, Y: math.Max(s.LatencyMS.P99, plotFloorMS)})
	}
	if len(p50) == 0 {
		xMin, xMax = 0, 1
	}
	if xMin == xMax {
		xMin, xMax = xMin*0.9, xMax*1.1+1
	}
	limit := r.P99MaxMS
	if limit <= 0 {
		limit = ms(P99MaxDefault)
	}
	threshold, err := plotter.NewLine(plotter.XYs{{X: xMin, Y: limit}, {X: xMax, Y: limit}})
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	threshold.Color = color.RGBA{R: 200, A: 255}
	threshold.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
	p.Add(threshold)
	p.Legend.Add(fmt.Sprintf("p99 limit %s ms", fnum(limit, 0)), threshold)

	for _, series := range []struct {
		name  string
		xys   plotter.XYs
		color color.Color
	}{
		{"p50", p50, color.RGBA{B: 200, A: 255}},
		{"p99", p99, color.RGBA{R: 230, G: 120, A: 255}},
	} {
		if len(series.xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(series.xys)
		if err != nil {
			return fmt.Errorf("plot %s: %w", series.name, err)
		}
		l.Color, pts.Color = series.color, series.color
		p.Add(l, pts)
		p.Legend.Add(series.name, l, pts)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	// Keep the limit line and the data clear of the frame.
	p.Y.Min = math.Max(math.Min(p.Y.Min, limit)/2, plotFloorMS)
	p.Y.Max = math.Max(p.Y.Max, limit) * 2
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}
