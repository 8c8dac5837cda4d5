package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plot sizes.
const (
	plotWidth  = 8 * vg.Inch
	plotHeight = 3.5 * vg.Inch
)

// Metrics a plot can show, for PlotCompare.
const (
	MetricPerSec   = "per_sec"
	MetricMBPerSec = "mb_per_sec"
	MetricP50      = "p50_ms"
	MetricP99      = "p99_ms"
)

// WritePlots writes two PNGs for s: prefix+"-throughput.png" (operations
// and MB per second over time) and prefix+"-latency.png" (p50, p99 and max
// latency of each second). It returns the files written.
func WritePlots(prefix string, s *Summary) ([]string, error) {
	if len(s.Series) == 0 {
		return nil, errors.New("bench: nothing to plot: the run has no intervals")
	}
	if dir := filepath.Dir(prefix); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	title := fmt.Sprintf("strata bench %s", s.Kind)

	tp := newPlot(fmt.Sprintf("%s: throughput (mean %.0f %s/s, %.1f MB/s)", title, s.PerSec, s.Unit, s.MBPerSec), "MB/s")
	if err := plotutil.AddLines(tp, "MB/s", series(s, MetricMBPerSec)); err != nil {
		return nil, err
	}
	lp := newPlot(fmt.Sprintf("%s: latency per second (run p50 %.2f ms, p99 %.2f ms)", title, s.Latency.P50, s.Latency.P99), "ms")
	if err := plotutil.AddLines(lp,
		"p50", series(s, MetricP50),
		"p99", series(s, MetricP99),
		"max", seriesOf(s, func(p Point) float64 { return p.MaxMs })); err != nil {
		return nil, err
	}
	files := []string{prefix + "-throughput.png", prefix + "-latency.png"}
	for i, p := range []*plot.Plot{tp, lp} {
		if err := p.Save(plotWidth, plotHeight, files[i]); err != nil {
			return nil, fmt.Errorf("bench: writing %s: %w", files[i], err)
		}
	}
	return files, nil
}

// PlotCompare writes one PNG at path with metric (one of the Metric*
// constants) of several runs over time, labelled by names.
func PlotCompare(path, title, metric string, names []string, runs []*Summary) error {
	if len(names) != len(runs) || len(runs) == 0 {
		return errors.New("bench: PlotCompare needs one name per run")
	}
	ylabel := map[string]string{MetricPerSec: "operations/s", MetricMBPerSec: "MB/s", MetricP50: "p50 ms", MetricP99: "p99 ms"}[metric]
	if ylabel == "" {
		return fmt.Errorf("bench: unknown metric %q", metric)
	}
	p := newPlot(title, ylabel)
	var args []any
	for i, s := range runs {
		args = append(args, names[i], series(s, metric))
	}
	if err := plotutil.AddLines(p, args...); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return p.Save(plotWidth, plotHeight, path)
}

func newPlot(title, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

// series is one metric of s's points.
func series(s *Summary, metric string) plotter.XYs {
	return seriesOf(s, func(p Point) float64 {
		switch strings.ToLower(metric) {
		case MetricPerSec:
			return p.PerSec
		case MetricMBPerSec:
			return p.MBPerSec
		case MetricP50:
			return p.P50Ms
		default:
			return p.P99Ms
		}
	})
}

func seriesOf(s *Summary, f func(Point) float64) plotter.XYs {
	xy := make(plotter.XYs, len(s.Series))
	for i, p := range s.Series {
		xy[i].X, xy[i].Y = p.T, f(p)
	}
	return xy
}
