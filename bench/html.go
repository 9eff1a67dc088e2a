package main

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	chart "github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"
)

// The --html report: one self-contained page (inline CSS and SVG charts
// rendered here by go-chart; no script, no external resource) with the
// parameters, the summary and ratio tables, and for every target its
// throughput over time (one series per round) and its latency percentile
// curve (HdrHistogram style: log-scaled percentile axis, p0 to p99.999).

const (
	chartWidth  = 900
	chartHeight = 380
)

// htmlChart is one rendered chart.
type htmlChart struct {
	Kind  string // "throughput" or "latency"
	Title string
	SVG   template.HTML
	Note  string // shown instead of the chart when there is no data
}

type htmlTarget struct {
	Target string
	Charts []htmlChart
}

type htmlRow struct {
	Cells []string
}

type htmlPage struct {
	Title       string
	Params      [][2]string
	Failures    []string
	Interrupted bool
	ExitCode    int
	SummaryHead []string
	Summary     []htmlRow
	RoundsHead  []string
	Rounds      []htmlRow
	Baseline    string
	RatiosHead  []string
	Ratios      []htmlRow
	Compare     *htmlChart
	Targets     []htmlTarget
}

var htmlTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 960px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
table.params td { text-align: left; font-family: ui-monospace, monospace; }
.fail { color: #b00; font-weight: bold; }
figure.chart { margin: 1em 0; } figure.chart svg { display: block; }
figcaption { font-weight: bold; margin-bottom: 0.3em; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{if .Interrupted}}<p class="fail">INTERRUPTED: the results are partial.</p>{{end}}
{{range .Failures}}<p class="fail">FAILED: {{.}}</p>{{end}}
<p>exit status {{.ExitCode}}</p>
<h2>Parameters</h2>
<table class="params">
{{range .Params}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>
{{if .Summary}}<h2>Summary (all rounds merged)</h2>
<table class="summary">
<tr>{{range .SummaryHead}}<th>{{.}}</th>{{end}}</tr>
{{range .Summary}}<tr>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{if .Ratios}}<h2>Ratios vs {{.Baseline}}</h2>
<p>value / baseline; ops/s: higher is better, latency: lower is better.</p>
<table class="ratios">
<tr>{{range .RatiosHead}}<th>{{.}}</th>{{end}}</tr>
{{range .Ratios}}<tr>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{if .Rounds}}<h2>Rounds</h2>
<table class="rounds">
<tr>{{range .RoundsHead}}<th>{{.}}</th>{{end}}</tr>
{{range .Rounds}}<tr>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{with .Compare}}<h2>Latency by percentile, all targets</h2>
<figure class="chart" data-chart="{{.Kind}}"><figcaption>{{.Title}}</figcaption>{{.SVG}}</figure>{{end}}
{{range .Targets}}<h2>{{.Target}}</h2>
{{range .Charts}}{{if .SVG}}<figure class="chart" data-chart="{{.Kind}}"><figcaption>{{.Title}}</figcaption>{{.SVG}}</figure>
{{else}}<p class="nochart">{{.Title}}: {{.Note}}</p>
{{end}}{{end}}{{end}}
</body>
</html>
`))

// writeHTMLReport renders rep and writes it to path atomically.
func writeHTMLReport(path string, rep *report) error {
	page, err := buildHTMLPage(rep)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := htmlTmpl.Execute(&buf, page); err != nil {
		return err
	}
	return writeFileAtomic(path, buf.Bytes())
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it over path, so that readers see the old file or the whole new one.
func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func buildHTMLPage(rep *report) (*htmlPage, error) {
	p := &rep.Parameters
	page := &htmlPage{
		Title:       fmt.Sprintf("bench %s — %s", p.Workload, p.Started),
		Failures:    rep.Failures,
		Interrupted: rep.Interrupted,
		ExitCode:    rep.ExitCode,
		Params:      htmlParams(p),
	}
	page.SummaryHead = []string{"target", "rounds", "ops", "ops/s", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "p99.99 µs", "max µs", "mean µs", "errors", "wrong"}
	for _, s := range rep.Summary {
		l := s.Latency
		page.Summary = append(page.Summary, htmlRow{Cells: []string{s.label(), strconv.Itoa(s.Rounds), commas(s.Ops), commasF(s.OpsPerSec),
			commas(l.P50), commas(l.P90), commas(l.P99), commas(l.P999), commas(l.P9999), commas(l.Max),
			strconv.FormatFloat(l.Mean, 'f', 1, 64), errString(s.Errors), commas(s.Wrong)}})
	}
	page.RoundsHead = []string{"target", "round", "ops", "seconds", "ops/s", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "errors"}
	for _, r := range rep.Runs {
		l := r.Latency
		page.Rounds = append(page.Rounds, htmlRow{Cells: []string{r.label(), strconv.Itoa(r.Round), commas(r.Ops),
			strconv.FormatFloat(r.Seconds, 'f', 2, 64), commasF(r.OpsPerSec), commas(l.P50), commas(l.P99), commas(l.P999), commas(l.Max),
			errString(r.Errors)}})
	}
	if len(rep.Ratios) > 0 {
		page.Baseline = rep.Ratios[0].Baseline
		page.RatiosHead = []string{"target", "ops/s", "p50", "p90", "p99", "p99.9", "p99.99", "max"}
		for _, rt := range rep.Ratios {
			page.Ratios = append(page.Ratios, htmlRow{Cells: []string{targetLabel(rt.Target, rt.Phase), rt.Ratios.text("ops_per_sec"), rt.Ratios.text("p50"),
				rt.Ratios.text("p90"), rt.Ratios.text("p99"), rt.Ratios.text("p99_9"), rt.Ratios.text("p99_99"), rt.Ratios.text("max")}})
		}
	}
	if len(rep.Summary) > 1 {
		var series []curveSeries
		for _, s := range rep.Summary {
			series = append(series, curveSeries{name: s.label(), curve: s.LatencyCurve})
		}
		c, err := latencyChart("all ops, all rounds merged, by target", series)
		if err != nil {
			return nil, err
		}
		page.Compare = &c
	}
	for _, s := range rep.Summary {
		t := htmlTarget{Target: s.label()}
		var rounds []*opRun
		for _, r := range rep.Runs {
			if r.Target == s.Target && r.Phase == s.Phase {
				rounds = append(rounds, r)
			}
		}
		tc, err := throughputChart(s.label(), rounds)
		if err != nil {
			return nil, err
		}
		series := []curveSeries{{name: "all ops", curve: s.LatencyCurve}}
		for op := range numOpKinds {
			if s.hist[op] != nil && s.hist[op].TotalCount() > 0 && len(s.Commands) > 1 {
				series = append(series, curveSeries{name: opNames[op], curve: percentileCurve(s.hist[op])})
			}
		}
		lc, err := latencyChart(s.label()+": latency by percentile (all rounds merged)", series)
		if err != nil {
			return nil, err
		}
		t.Charts = append(t.Charts, tc, lc)
		page.Targets = append(page.Targets, t)
	}
	return page, nil
}

func htmlParams(p *params) [][2]string {
	var out [][2]string
	add := func(k, v string) {
		if v != "" {
			out = append(out, [2]string{k, v})
		}
	}
	add("command line", strings.Join(append([]string{"bench"}, p.CommandLine...), " "))
	add("workload", p.Workload)
	ts := strings.Join(p.Targets, ", ")
	if len(p.Targets) > 1 {
		ts = p.Targets[0] + " (baseline for ratios), " + strings.Join(p.Targets[1:], ", ")
	}
	add("targets", ts)
	add("commands", strings.Join(p.Commands, "; "))
	add("mix", p.Mix)
	if p.Connections > 0 {
		add("load", fmt.Sprintf("%d connections, pipeline %d, %s", p.Connections, p.Pipeline, p.Loop))
	}
	if p.Requests > 0 {
		add("measure", fmt.Sprintf("%s requests per round after %gs warmup, %d round(s) per target", commas(p.Requests), p.WarmupS, p.Rounds))
	} else if p.DurationS > 0 {
		add("measure", fmt.Sprintf("%gs per round after %gs warmup, %d round(s) per target", p.DurationS, p.WarmupS, p.Rounds))
	}
	add("keyspace", fmt.Sprintf("%s keys, %s; %d-byte keys like %s; populate %v", commas(p.Keys), p.KeyDist, p.KeySize, p.ExampleKey, p.Populate))
	add("values", fmt.Sprintf("%s, ttl %ds", p.ValueSizes, p.TTLSeconds))
	add("verify", p.Verify)
	if p.During != "" {
		add("during", p.During+": each round measured idle, then while BGSAVEs run back to back")
	}
	add("seed", strconv.FormatUint(p.Seed, 10))
	add("client", p.Client)
	add("started", p.Started)
	return out
}

type curveSeries struct {
	name  string
	curve []pctPoint
}

// seriesColors are distinguishable line colors.
var seriesColors = []drawing.Color{
	{R: 31, G: 119, B: 180, A: 255}, {R: 214, G: 39, B: 40, A: 255}, {R: 44, G: 160, B: 44, A: 255},
	{R: 255, G: 127, B: 14, A: 255}, {R: 148, G: 103, B: 189, A: 255}, {R: 140, G: 86, B: 75, A: 255},
	{R: 227, G: 119, B: 194, A: 255}, {R: 127, G: 127, B: 127, A: 255},
}

func seriesStyle(i int) chart.Style {
	c := seriesColors[i%len(seriesColors)]
	return chart.Style{StrokeColor: c, StrokeWidth: 2, DotColor: c, DotWidth: 2}
}

// latencyChart plots percentile curves on the HdrHistogram log-scaled axis:
// x = log10(1/(1-percentile)).
func latencyChart(title string, series []curveSeries) (htmlChart, error) {
	hc := htmlChart{Kind: "latency", Title: title}
	ymax := 0.0
	var ss []chart.Series
	for i, s := range series {
		if len(s.curve) == 0 {
			continue
		}
		cs := chart.ContinuousSeries{Name: html.EscapeString(s.name), Style: seriesStyle(i)}
		for _, pt := range s.curve {
			cs.XValues = append(cs.XValues, nines(pt.Percentile))
			cs.YValues = append(cs.YValues, float64(pt.Us))
			ymax = math.Max(ymax, float64(pt.Us))
		}
		ss = append(ss, cs)
	}
	if len(ss) == 0 {
		hc.Note = "no latencies recorded"
		return hc, nil
	}
	var ticks []chart.Tick
	for n := 0; n <= curveNines; n++ {
		ticks = append(ticks, chart.Tick{Value: float64(n), Label: pctLabel(n)})
	}
	g := chart.Chart{
		Width: chartWidth, Height: chartHeight,
		Background: chart.Style{Padding: chart.Box{Top: 20, Left: 20, Right: 20, Bottom: 10}},
		XAxis:      chart.XAxis{Name: "percentile (log scale: 1/(1-p))", Range: &chart.ContinuousRange{Min: 0, Max: curveNines}, Ticks: ticks},
		YAxis:      chart.YAxis{Name: "latency µs", Range: &chart.ContinuousRange{Min: 0, Max: niceMax(ymax)}, ValueFormatter: intFormatter},
		Series:     ss,
	}
	g.Elements = []chart.Renderable{chart.LegendLeft(&g)}
	svg, err := renderSVG(&g)
	hc.SVG = svg
	return hc, err
}

// pctLabel labels the n-nines tick: 0%, 90%, 99%, 99.9%, ...
func pctLabel(n int) string {
	if n == 0 {
		return "0%"
	}
	return strconv.FormatFloat(100*(1-math.Pow(10, -float64(n))), 'f', max(n-2, 0), 64) + "%"
}

// throughputChart plots each round's per-second throughput.
func throughputChart(target string, rounds []*opRun) (htmlChart, error) {
	hc := htmlChart{Kind: "throughput", Title: target + ": throughput over time (ops/s, per second of each measured round)"}
	ymax, xmax := 0.0, 0.0
	var ss []chart.Series
	for i, r := range rounds {
		if len(r.Throughput) == 0 {
			continue
		}
		cs := chart.ContinuousSeries{Name: fmt.Sprintf("round %d", r.Round), Style: seriesStyle(i)}
		for _, s := range r.Throughput {
			cs.XValues = append(cs.XValues, s.T)
			cs.YValues = append(cs.YValues, s.OpsPerSec)
			ymax, xmax = math.Max(ymax, s.OpsPerSec), math.Max(xmax, s.T)
		}
		ss = append(ss, cs)
	}
	if len(ss) == 0 {
		hc.Note = "no throughput samples (a round measured less than 100 ms)"
		return hc, nil
	}
	g := chart.Chart{
		Width: chartWidth, Height: chartHeight,
		Background: chart.Style{Padding: chart.Box{Top: 20, Left: 20, Right: 20, Bottom: 10}},
		XAxis:      secondsAxis(xmax),
		YAxis:      chart.YAxis{Name: "ops/s", Range: &chart.ContinuousRange{Min: 0, Max: niceMax(ymax)}, ValueFormatter: intFormatter},
		Series:     ss,
	}
	g.Elements = []chart.Renderable{chart.LegendLeft(&g)}
	svg, err := renderSVG(&g)
	hc.SVG = svg
	return hc, err
}

// secondsAxis is an x axis from 0 to about xmax seconds with whole-second
// ticks (at most about 12 of them).
func secondsAxis(xmax float64) chart.XAxis {
	top := math.Max(1, math.Ceil(xmax-0.01))
	step := math.Max(1, math.Ceil(top/12))
	top = math.Ceil(top/step) * step
	var ticks []chart.Tick
	for v := 0.0; v <= top; v += step {
		ticks = append(ticks, chart.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return chart.XAxis{Name: "seconds since the measurement started", Range: &chart.ContinuousRange{Min: 0, Max: top}, Ticks: ticks}
}

// niceMax is an axis maximum a little above v (at least 1).
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	return math.Ceil(v * 1.1)
}

func intFormatter(v any) string {
	if f, ok := v.(float64); ok {
		return commasF(f)
	}
	return fmt.Sprint(v)
}

// renderSVG renders g as inline SVG markup.
func renderSVG(g *chart.Chart) (template.HTML, error) {
	var buf bytes.Buffer
	if err := g.Render(chart.SVG, &buf); err != nil {
		return "", err
	}
	// The markup is go-chart's; all text put into it was escaped above.
	return template.HTML(buf.String()), nil
}
