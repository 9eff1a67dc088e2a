package persist

import (
	"errors"
	"fmt"
	"time"
)

// Stats is a point-in-time view of a Manager, for INFO persistence and
// CONFIG GET.
type Stats struct {
	Path       string
	Save       []SaveRule
	AppendOnly bool
	Fsync      string

	ChangesSinceSave int64
	SaveInProgress   bool
	SaveStarted      time.Time // of the running save
	LastSave         time.Time // last successful save (start-up time before one)
	LastSaveOK       bool
	LastSaveDuration time.Duration // -1 before the first save
	Saves            int64
	SaveFailures     int64
	Loaded           LoadStats

	// Write-behind (AppendOnly) figures.
	DirtyKeys           int
	Flushes             int64
	FlushFailures       int64
	LastFlush           time.Time
	LastFlushRecords    int
	LastFlushDuration   time.Duration
	LastWriteOK         bool
	FileBytes           int64 // bytes of blocks in the file
	BaseBytes, LogBytes int64

	// Err is the last error that persistence met and still has (a file
	// that cannot be created or written), or nil.
	Err error
}

// Stats returns the Manager's current figures.
func (m *Manager) Stats() Stats {
	m.dmu.Lock()
	dirty := len(m.dirty)
	m.dmu.Unlock()
	base, logb := m.baseBytes.Load(), m.logBytes.Load()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Stats{
		Path:              m.path,
		Save:              append([]SaveRule(nil), m.rules...),
		AppendOnly:        m.appendOnly,
		Fsync:             m.fsync,
		ChangesSinceSave:  m.changes.Load() - m.savedChanges,
		SaveInProgress:    m.saving,
		SaveStarted:       m.saveStart,
		LastSave:          m.lastSave,
		LastSaveOK:        m.lastSaveOK,
		LastSaveDuration:  m.lastSaveDur,
		Saves:             m.saves,
		SaveFailures:      m.saveFailures,
		Loaded:            m.loaded,
		DirtyKeys:         dirty,
		Flushes:           m.flushes,
		FlushFailures:     m.flushFails,
		LastFlush:         m.lastFlush,
		LastFlushRecords:  m.lastFlushN,
		LastFlushDuration: m.lastFlushDur,
		LastWriteOK:       m.writeErr == nil,
		FileBytes:         base + logb,
		BaseBytes:         base,
		LogBytes:          logb,
	}
	switch {
	case m.writeErr != nil:
		st.Err = m.writeErr
	case !m.lastSaveOK && m.saveErr != nil:
		st.Err = m.saveErr
	case m.fileErr != nil:
		st.Err = m.fileErr
	}
	return st
}

// SetSaveRules replaces the automatic snapshot rules (CONFIG SET save).
func (m *Manager) SetSaveRules(rules []SaveRule) {
	m.mu.Lock()
	m.rules = append([]SaveRule(nil), rules...)
	m.mu.Unlock()
}

// SetFsync changes the write-behind policy (CONFIG SET appendfsync).
func (m *Manager) SetFsync(policy string) error {
	switch policy {
	case FsyncEverySec, FsyncAlways, FsyncNo:
	default:
		return fmt.Errorf("%w: appendfsync must be everysec, always or no", ErrConfig)
	}
	m.mu.Lock()
	m.fsync = policy
	m.always.Store(m.appendOnly && policy == FsyncAlways)
	m.mu.Unlock()
	m.fmu.Lock()
	m.setNoSync()
	m.fmu.Unlock()
	return nil
}

// SetAppendOnly turns the write-behind mode on or off (CONFIG SET
// appendonly). Turning it on starts a full snapshot, after which the log
// follows it (changes made meanwhile are caught up); turning it off
// writes the pending changes first, and the file stays a complete copy.
func (m *Manager) SetAppendOnly(on bool) error {
	m.mu.Lock()
	if m.appendOnly == on {
		m.mu.Unlock()
		return nil
	}
	if m.closed.Load() {
		m.mu.Unlock()
		return ErrClosed
	}
	if on {
		m.tracking.Store(true)
		m.appendOnly = true
		m.needBase = true
		m.always.Store(m.fsync == FsyncAlways)
		if !m.saving {
			_, _ = m.startSaveLocked(false)
		}
		m.mu.Unlock()
		m.fmu.Lock()
		m.setNoSync()
		m.fmu.Unlock()
		return nil
	}
	m.mu.Unlock()
	err := m.flushLog()
	m.mu.Lock()
	m.appendOnly = false
	m.needBase = false
	m.always.Store(false)
	m.tracking.Store(false)
	m.mu.Unlock()
	m.dmu.Lock()
	clear(m.dirty)
	m.ops = nil
	seq := m.seq
	m.dmu.Unlock()
	m.markHandled(seq)
	m.fmu.Lock()
	if derr := m.drainWALLocked(); derr != nil {
		err = errors.Join(err, derr)
	}
	m.setNoSync()
	m.fmu.Unlock()
	if err != nil {
		return errors.Join(errors.New("pending changes could not be written"), err)
	}
	return nil
}
