package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// synthBGSaveReport is a --during bgsave report of one round on two
// targets, whose latency grows during saves (B's more than A's).
func synthBGSaveReport(out *bytes.Buffer) *report {
	rep := synthReport("a:1")
	rep.out, rep.json = out, false
	rep.Runs, rep.Summary, rep.Ratios = nil, nil, nil
	rep.Parameters.Targets = []string{"a:1", "b:2"}
	rep.Parameters.Rounds = 1
	rep.Parameters.During = duringBGSave
	for i, t := range []string{"a:1", "b:2"} {
		idle := synthRun(t, 1, 1)
		idle.Phase = phaseIdle
		bg := synthRun(t, 1, int64(i+2))
		bg.Phase = phaseBGSave
		bg.BGSave = &saveStats{Completed: int64(3 + i), MeanS: 0.5, MaxS: 0.75, Started: int64(4 + i), BusyFraction: 0.99, PollMs: 20,
			sumS: 0.5 * float64(3+i), windowS: 4}
		bg.VsIdle = vsIdle(idle, bg)
		for _, r := range []*opRun{idle, bg} {
			rep.Runs = append(rep.Runs, r)
			rep.printRun(r)
			s := mergeRuns([]*opRun{r})
			if s.Phase == phaseBGSave {
				s.VsIdle = vsIdle(rep.Summary[len(rep.Summary)-1], s)
			}
			rep.Summary = append(rep.Summary, s)
		}
	}
	rep.compareRuns(rep.Summary)
	return rep
}

func TestReportDuringBGSave(t *testing.T) {
	var out bytes.Buffer
	rep := synthBGSaveReport(&out)
	text := out.String()

	// Each phase is labelled in its header; the "all" rows keep their format.
	heads := regexp.MustCompile(`(?m)^(\S+)  round 1/1  phase (idle|bgsave)$`).FindAllStringSubmatch(text, -1)
	require.Len(t, heads, 4)
	assert.Equal(t, []string{"a:1 idle", "a:1 bgsave", "b:2 idle", "b:2 bgsave"},
		[]string{heads[0][1] + " " + heads[0][2], heads[1][1] + " " + heads[1][2], heads[2][1] + " " + heads[2][2], heads[3][1] + " " + heads[3][2]})
	all := regexp.MustCompile(`(?m)^  all +[0-9,]+( +\d+){7} +[0-9.]+$`).FindAllString(text, -1)
	assert.Len(t, all, 4)
	assert.Contains(t, text, "  saves        4 saves completed in the measured window, wall time mean 0.50 s, max 0.75 s; a save of bench's in flight 99% of it (5 BGSAVEs sent, INFO polled every 20 ms)\n")
	x := func(bg, idle int64) string { return fmt.Sprintf("x%.2f", float64(bg)/float64(idle)) }
	for _, i := range []int{1, 3} {
		idle, bg := rep.Runs[i-1].Latency, rep.Runs[i].Latency
		assert.Contains(t, text, fmt.Sprintf("  vs idle      all commands, bgsave / idle: p50 %s   p99 %s   p99.9 %s\n",
			x(bg.P50, idle.P50), x(bg.P99, idle.P99), x(bg.P999, idle.P999)))
	}

	// The snapshot table: each target's idle and bgsave p99 and the ratio.
	_, table, ok := strings.Cut(text, "latency during back-to-back background saves")
	require.True(t, ok)
	rows := regexp.MustCompile(`(?m)^  ([ab]:\d) +1 +[0-9,]+ +[0-9,]+ +(\d+) +(\d+) +x[0-9.]+ +(x[0-9.]+) +x[0-9.]+ +(\d) +0\.50 s$`).FindAllStringSubmatch(table, -1)
	require.Len(t, rows, 2, table)
	for i, row := range rows {
		idle, bg := rep.Summary[2*i].Latency, rep.Summary[2*i+1].Latency
		assert.Equal(t, []string{"a:1", "b:2"}[i], row[1])
		assert.Equal(t, []string{fmt.Sprint(idle.P99), fmt.Sprint(bg.P99), x(bg.P99, idle.P99)}, row[2:5])
		assert.Equal(t, []string{"3", "4"}[i], row[5], "saves completed")
	}
	assert.Contains(t, text, fmt.Sprintf("  b:2 bgsave                    ops/s x1.50   p50 %s", x(rep.Summary[3].Latency.P50, rep.Summary[1].Latency.P50)),
		"ratios to the baseline, phase by phase")

	// JSON: both phases, the save figures and the ratios.
	var buf bytes.Buffer
	require.NoError(t, rep.printJSON(&buf))
	var doc struct {
		Parameters map[string]any   `json:"parameters"`
		Runs       []map[string]any `json:"runs"`
		Summary    []map[string]any `json:"summary"`
		Ratios     []map[string]any `json:"ratios"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))
	assert.Equal(t, "bgsave", doc.Parameters["during"])
	require.Len(t, doc.Runs, 4)
	assert.Equal(t, "idle", doc.Runs[0]["phase"])
	assert.NotContains(t, doc.Runs[0], "bgsave")
	assert.Equal(t, "bgsave", doc.Runs[1]["phase"])
	assert.Equal(t, map[string]any{"completed": 3.0, "mean_s": 0.5, "max_s": 0.75, "started": 4.0, "already_running": 0.0,
		"busy_fraction": 0.99, "poll_ms": 20.0}, doc.Runs[1]["bgsave"])
	assert.InDelta(t, float64(rep.Runs[1].Latency.P99)/float64(rep.Runs[0].Latency.P99), doc.Runs[1]["vs_idle"].(map[string]any)["p99"], 1e-9)
	assert.InDelta(t, float64(rep.Summary[3].Latency.P999)/float64(rep.Summary[2].Latency.P999), doc.Summary[3]["vs_idle"].(map[string]any)["p99_9"], 1e-9)
	assert.Greater(t, doc.Summary[3]["vs_idle"].(map[string]any)["p99"], 1.1)
	require.Len(t, doc.Ratios, 2)
	assert.Equal(t, []any{"idle", "bgsave"}, []any{doc.Ratios[0]["phase"], doc.Ratios[1]["phase"]})

	// HTML: a section per target and phase.
	file := filepath.Join(t.TempDir(), "r.html")
	require.NoError(t, writeHTMLReport(file, rep))
	page, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Contains(t, string(page), "<h2>b:2 (bgsave)</h2>")
	assert.Len(t, figureRe.FindAllString(string(page), -1), 1+4*2)
}

// TestReportJSONWithoutDuring: without --during the JSON has none of the
// new fields.
func TestReportJSONWithoutDuring(t *testing.T) {
	rep := synthReport("a:1", "b:2")
	var buf bytes.Buffer
	require.NoError(t, rep.printJSON(&buf))
	for _, key := range []string{`"phase"`, `"bgsave"`, `"vs_idle"`, `"during"`} {
		assert.NotContains(t, buf.String(), key)
	}
}
