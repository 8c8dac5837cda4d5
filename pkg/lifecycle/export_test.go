package lifecycle

// ThrottleOf returns the read and write rates of m's own executor, for
// tests of the throttle's catch-up (throttle.go).
func ThrottleOf(m *Manager) (read, write int64) {
	m.local.read.mu.Lock()
	read = m.local.read.rate
	m.local.read.mu.Unlock()
	m.local.write.mu.Lock()
	write = m.local.write.rate
	m.local.write.mu.Unlock()
	return read, write
}

// CompactReads is how many GETs one compaction task keeps in flight.
const CompactReads = compactReads
