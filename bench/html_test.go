package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// synthRun is a measured round with made-up latencies and throughput.
func synthRun(target string, round int, scale int64) *opRun {
	r := &opRun{Target: target, Round: round, Rounds: 1, Errors: map[string]int64{}, Verified: true, Seconds: 4 / float64(scale)}
	for _, op := range []opKind{opGetex, opSet} {
		r.hist[op] = newHist()
		for i := int64(1); i <= 2000; i++ {
			recordUs(r.hist[op], scale*(50+i%97)+i*i/4000)
			r.count[op]++
		}
	}
	for s := 1; s <= 3; s++ {
		r.Throughput = append(r.Throughput, rateSample{T: float64(s), OpsPerSec: float64(1000*scale + int64(100*s))})
	}
	r.finish()
	return r
}

// synthReport is a two-target, two-round session report.
func synthReport(targets ...string) *report {
	rep := &report{out: io.Discard, json: true, Parameters: params{
		Workload: wlSession, Targets: targets, Commands: []string{"GETEX <key> EX 1800  (80%)", "SET <key> <700 B> EX 1800  (20%)"},
		Mix: "GETEX 80%, SET 20%", Connections: 2, Pipeline: 1, Loop: "closed", DurationS: 3, Keys: 1000, KeySize: 37,
		ExampleKey: "sess:x", ValueSizes: "700 B", Rounds: 2, Started: "2026-01-01T00:00:00Z", CommandLine: []string{"--target", "<a&b>"},
	}}
	runs := map[string][]*opRun{}
	for round := 1; round <= 2; round++ {
		for i, t := range targets {
			r := synthRun(t, round, int64(i+1))
			rep.Runs = append(rep.Runs, r)
			runs[t] = append(runs[t], r)
		}
	}
	for _, t := range targets {
		rep.Summary = append(rep.Summary, mergeRuns(runs[t]))
	}
	rep.compareRuns(rep.Summary)
	return rep
}

var (
	svgRe    = regexp.MustCompile(`(?s)<svg .*?</svg>`)
	figureRe = regexp.MustCompile(`(?s)<figure class="chart" data-chart="(\w+)">(.*?)</figure>`)
)

// seriesPoints returns the number of points of each data series in svg: a
// path drawn in the series' 2-px stroke, leaving out the legend's sample
// lines (two points, horizontal).
func seriesPoints(svg string) []int {
	re := regexp.MustCompile(`(?s)<path\s+d="(M[^"]*)"\s+style="stroke-width:2;stroke:rgba\(`)
	var out []int
	for _, m := range re.FindAllStringSubmatch(svg, -1) {
		pts := strings.Split(strings.TrimPrefix(m[1], "M "), "\nL ")
		if len(pts) == 2 && strings.Fields(pts[0])[1] == strings.Fields(pts[1])[1] {
			continue
		}
		out = append(out, len(pts))
	}
	return out
}

func TestHTMLReport(t *testing.T) {
	rep := synthReport("127.0.0.1:7000", "127.0.0.1:6379")
	file := filepath.Join(t.TempDir(), "report.html")
	require.NoError(t, writeHTMLReport(file, rep))
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	page := string(data)

	// Self-contained: no script, no external resource.
	assert.NotContains(t, page, "<script")
	assert.NotRegexp(t, `(?i)(src|href)=`, page)
	// One <svg> per chart: the comparison, and throughput + latency per target.
	figs := figureRe.FindAllStringSubmatch(page, -1)
	require.Len(t, figs, 5)
	assert.Len(t, svgRe.FindAllString(page, -1), 5)
	var kinds []string
	for _, f := range figs {
		kinds = append(kinds, f[1])
		require.Len(t, svgRe.FindAllString(f[2], -1), 1, "one svg in the %s figure", f[1])
		pts := seriesPoints(f[2])
		switch f[1] {
		case "throughput":
			assert.Equal(t, []int{3, 3}, pts, "one series per round, one point per second")
		case "latency":
			require.NotEmpty(t, pts)
			for _, n := range pts {
				assert.Equal(t, curveNines*curveTicks+1, n, "p0 .. p99.999")
			}
		}
	}
	assert.Equal(t, []string{"latency", "throughput", "latency", "throughput", "latency"}, kinds)
	// The per-target latency chart has all ops and each command.
	assert.Len(t, seriesPoints(figs[2][2]), 3)
	assert.Contains(t, figs[0][2], ">99.999%<", "log-scaled percentile axis up to p99.999")
	// Tables and escaping.
	assert.Contains(t, page, "Ratios vs 127.0.0.1:7000")
	assert.Contains(t, page, "bench --target &lt;a&amp;b&gt;")
	assert.Contains(t, page, "<td>1,000</td>", "summary ops/s of the first target")
	assert.Contains(t, page, "x2.00", "ops/s ratio")
	entries, err := os.ReadDir(filepath.Dir(file))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")
}

func TestPercentileCurve(t *testing.T) {
	h := newHist()
	for i := int64(1); i <= 100000; i++ {
		recordUs(h, i)
	}
	c := percentileCurve(h)
	require.Len(t, c, curveNines*curveTicks+1)
	assert.Equal(t, 0.0, c[0].Percentile)
	assert.Equal(t, int64(1), c[0].Us)
	assert.InDelta(t, 99.999, c[len(c)-1].Percentile, 1e-9)
	assert.InDelta(t, 90.0, c[curveTicks].Percentile, 1e-9)
	assert.InDelta(t, 90000, c[curveTicks].Us, 100)
	for i := 1; i < len(c); i++ {
		assert.GreaterOrEqual(t, c[i].Us, c[i-1].Us)
	}
	assert.Nil(t, percentileCurve(newHist()))
	assert.Equal(t, "99.999%", pctLabel(5))
	assert.Equal(t, "90%", pctLabel(1))
}

func TestSampleThroughput(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		done := make(chan struct{})
		var n int64 // only the sampler calls measured
		go func() {
			time.Sleep(1300 * time.Millisecond) // the bubble's fake clock
			close(done)
		}()
		start := time.Now()
		samples := sampleThroughput(start, done, func() int64 {
			n += 1000
			return n
		})
		require.Len(t, samples, 2, "one whole second and the 300 ms tail")
		assert.InDelta(t, 1.0, samples[0].T, 0.2)
		assert.InDelta(t, 1000, samples[0].OpsPerSec, 200)
		assert.InDelta(t, 1.3, samples[1].T, 0.2)
		assert.Greater(t, samples[1].OpsPerSec, 2000.0, "1000 ops in about 0.3 s")

		closed := make(chan struct{})
		close(closed)
		assert.Nil(t, sampleThroughput(time.Now().Add(time.Hour), closed, func() int64 { return 0 }))
	})
}

// chromiumArgs are the flags of a sandboxed, offline headless Chromium.
func chromiumArgs(t *testing.T, extra ...string) []string {
	return append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1000,2400"}, extra...)
}

func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium"} {
		if bin, err := exec.LookPath(p); err == nil {
			return bin
		}
	}
	if os.Getenv("BENCH_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("BENCH_REQUIRE_CHROMIUM=1 but chromium is not installed (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium); skipping the browser test")
	return ""
}

func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "chromium: %s", stderr.String())
	return stdout.Bytes()
}

// sizeScript records every chart SVG's rendered size in a DOM attribute, so
// that --dump-dom shows what the browser laid out.
const sizeScript = `<script>
window.addEventListener('load', () => {
  const sizes = [...document.querySelectorAll('figure.chart svg')].map(s => {
    const r = s.getBoundingClientRect();
    return Math.round(r.width) + 'x' + Math.round(r.height) + ':' + s.querySelectorAll('path').length;
  });
  document.body.setAttribute('data-svg-sizes', sizes.join(' '));
});
</script>`

func TestHTMLReportInChromium(t *testing.T) {
	t.Parallel()
	bin := chromium(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	require.NoError(t, writeHTMLReport(file, synthReport("127.0.0.1:7000", "127.0.0.1:6379")))
	data, err := os.ReadFile(file)
	require.NoError(t, err)

	// The DOM as laid out, with the sizes recorded by the script added to a
	// copy of the page.
	probe := filepath.Join(dir, "probe.html")
	require.NoError(t, os.WriteFile(probe, bytes.Replace(data, []byte("</body>"), []byte(sizeScript+"</body>"), 1), 0o644))
	dom := string(runChromium(t, bin, chromiumArgs(t, "--dump-dom", "file://"+probe)...))
	m := regexp.MustCompile(`data-svg-sizes="([^"]*)"`).FindStringSubmatch(dom)
	require.NotNil(t, m, "the script ran: %.500s", dom)
	sizes := strings.Fields(m[1])
	require.Len(t, sizes, 5, "every chart is in the rendered DOM")
	for _, s := range sizes {
		var w, h, paths int
		parts := strings.FieldsFunc(s, func(r rune) bool { return r == 'x' || r == ':' })
		require.Len(t, parts, 3, s)
		w, _ = strconv.Atoi(parts[0])
		h, _ = strconv.Atoi(parts[1])
		paths, _ = strconv.Atoi(parts[2])
		assert.Greater(t, w, 300, "chart width %s", s)
		assert.Greater(t, h, 100, "chart height %s", s)
		assert.Greater(t, paths, 10, "chart drawn %s", s)
	}

	// A screenshot of the page itself is not blank.
	shot := filepath.Join(dir, "shot.png")
	runChromium(t, bin, chromiumArgs(t, "--screenshot="+shot, "file://"+file)...)
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Greater(t, distinctColors(img), 20, "the screenshot shows text and coloured charts")
}

func distinctColors(img image.Image) int {
	seen := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[(r>>8)<<16|(g>>8)<<8|bl>>8] = true
		}
	}
	return len(seen)
}
