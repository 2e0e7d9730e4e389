package dashboard

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"credbroker/daemon"
)

// Chart geometry, in SVG user units: a plot area with room on the left
// for the y labels and below for the x labels. The SVG scales to the
// page's width; its viewBox keeps these proportions.
const (
	chartW     = 720
	chartH     = 150
	plotLeft   = 48
	plotTop    = 10
	plotBottom = 122
	slotW      = 11 // one minute; 60 of them span the plot
	barW       = 8
)

// chart is one inline SVG: gridlines with labels, bars, a line.
type chart struct {
	W, H       int
	Grid       []gridLine
	XLabels    []xLabel
	Bars       []bar
	Lines      []string // polyline points, one per run of minutes with data
	Dots       []dot
	Empty      bool
	EmptyX     float64
	EmptyY     float64
	PlotLeft   int
	PlotRight  int
	PlotBottom int
}

type gridLine struct {
	Y     float64
	Label string
}

type xLabel struct {
	X     float64
	Label string
	// Anchor is the SVG text-anchor.
	Anchor string
}

type bar struct {
	X, W              float64
	OKY, OKH          float64
	ErrY, ErrH        float64
	HasErrors, HasOKs bool
	Title             string
}

type dot struct {
	X, Y  float64
	Title string
}

func newChart() chart {
	return chart{
		W: chartW, H: chartH, PlotLeft: plotLeft, PlotRight: plotLeft + daemon.HistoryMinutes*slotW, PlotBottom: plotBottom,
		EmptyX: plotLeft + daemon.HistoryMinutes*slotW/2, EmptyY: (plotTop + plotBottom) / 2,
		XLabels: []xLabel{
			{plotLeft, "60 min ago", "start"},
			{plotLeft + daemon.HistoryMinutes*slotW/2, "30 min ago", "middle"},
			{plotLeft + daemon.HistoryMinutes*slotW, "now", "end"},
		},
	}
}

// charts draws the issuance bars and the hit-ratio line from the
// history, oldest minute first, and sums the hour.
func charts(hist []daemon.Minute, loc *time.Location) (issuance, ratio chart, sum summary) {
	issuance, ratio = newChart(), newChart()
	var hits, misses uint64
	for _, m := range hist {
		sum.Issued += m.Issued
		sum.Errors += m.Errors
		sum.Peak = max(sum.Peak, m.Issued+m.Errors)
		hits += m.Hits
		misses += m.Misses
	}
	sum.HitRatio = "no requests"
	if hits+misses > 0 {
		sum.HitRatio = percent(float64(hits) / float64(hits+misses))
	}

	top := niceCeil(sum.Peak)
	plotH := float64(plotBottom - plotTop)
	for _, f := range []uint64{0, top / 2, top} {
		if f == top/2 && top%2 != 0 {
			continue
		}
		issuance.Grid = append(issuance.Grid, gridLine{plotBottom - plotH*float64(f)/float64(top), strconv.FormatUint(f, 10)})
	}
	for _, f := range []float64{0, 0.5, 1} {
		ratio.Grid = append(ratio.Grid, gridLine{plotBottom - plotH*f, percent(f)})
	}

	issuance.Empty = sum.Peak == 0
	ratio.Empty = hits+misses == 0
	var run []string
	for i, m := range hist {
		at := m.Start.In(loc).Format("15:04")
		x := float64(plotLeft + i*slotW)
		if n := m.Issued + m.Errors; n > 0 {
			b := bar{X: x + (slotW-barW)/2.0, W: barW, Title: fmt.Sprintf("%s: %d issued, %d failed", at, m.Issued, m.Errors)}
			okH := plotH * float64(m.Issued) / float64(top)
			errH := plotH * float64(m.Errors) / float64(top)
			b.OKY, b.OKH, b.HasOKs = plotBottom-okH, okH, m.Issued > 0
			b.ErrY, b.ErrH, b.HasErrors = plotBottom-okH-errH, errH, m.Errors > 0
			issuance.Bars = append(issuance.Bars, b)
		}
		if n := m.Hits + m.Misses; n > 0 {
			r := float64(m.Hits) / float64(n)
			d := dot{X: x + slotW/2.0, Y: plotBottom - plotH*r, Title: fmt.Sprintf("%s: %s from the cache (%d of %d)", at, percent(r), m.Hits, n)}
			ratio.Dots = append(ratio.Dots, d)
			run = append(run, coord(d.X)+","+coord(d.Y))
			continue
		}
		if len(run) > 1 {
			ratio.Lines = append(ratio.Lines, strings.Join(run, " "))
		}
		run = nil
	}
	if len(run) > 1 {
		ratio.Lines = append(ratio.Lines, strings.Join(run, " "))
	}
	return issuance, ratio, sum
}

// niceCeil rounds a peak up to 1, 2 or 5 times a power of ten (at least
// 2, so the middle gridline has a whole number).
func niceCeil(v uint64) uint64 {
	for base := uint64(1); ; base *= 10 {
		for _, m := range []uint64{2, 5, 10} {
			if c := base * m; c >= v {
				return c
			}
		}
	}
}

func percent(f float64) string { return strconv.Itoa(int(f*100+0.5)) + "%" }

func coord(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
