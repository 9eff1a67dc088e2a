//go:build !race

package server

// raceEnabled: the race detector allows at most 8128 live goroutines.
const raceEnabled = false
