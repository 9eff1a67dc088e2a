package persist

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// SaveRule asks for a snapshot once Changes changes have been made and
// Seconds have passed since the last save (redis.conf's "save <seconds>
// <changes>").
type SaveRule struct {
	Seconds int64
	Changes int64
}

// DefaultSaveRules are Redis's: after an hour if anything changed, after
// 5 minutes if 100 keys changed, after a minute if 10000 did.
var DefaultSaveRules = []SaveRule{{3600, 1}, {300, 100}, {60, 10000}}

// ErrSaveRules is returned by ParseSaveRules for a malformed value.
//
//lint:ignore ST1005 Redis's wording, shown to clients as is
var ErrSaveRules = errors.New("Invalid save parameters")

// ParseSaveRules parses "<seconds> <changes> ..." pairs; "" means none.
func ParseSaveRules(s string) ([]SaveRule, error) {
	f := strings.Fields(s)
	if len(f)%2 != 0 {
		return nil, ErrSaveRules
	}
	rules := make([]SaveRule, 0, len(f)/2)
	for i := 0; i < len(f); i += 2 {
		sec, err1 := strconv.ParseInt(f[i], 10, 64)
		ch, err2 := strconv.ParseInt(f[i+1], 10, 64)
		if err1 != nil || err2 != nil || sec < 1 || ch < 0 {
			return nil, ErrSaveRules
		}
		rules = append(rules, SaveRule{sec, ch})
	}
	return rules, nil
}

// FormatSaveRules is the inverse of ParseSaveRules (CONFIG GET save).
func FormatSaveRules(rules []SaveRule) string {
	var b strings.Builder
	for i, r := range rules {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatInt(r.Seconds, 10))
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(r.Changes, 10))
	}
	return b.String()
}

// due reports whether a rule asks for a save now.
func saveDue(rules []SaveRule, changes int64, since time.Duration) bool {
	for _, r := range rules {
		if changes >= r.Changes && since >= time.Duration(r.Seconds)*time.Second {
			return true
		}
	}
	return false
}
