// Package checker proves Strata's delivery invariants end to end: it
// records every record a producer had acknowledged and every record
// consumers read back, and then reports each way they disagree.
//
// What it checks, per partition (invariants 1, 2 and 4 of docs/design.md):
//   - every acknowledged record is read back, at the offset its
//     acknowledgement named, with the same key and value;
//   - offsets read start at the first expected offset and are dense: no
//     gap, no offset read twice, in increasing order;
//   - no two acknowledgements name the same offset.
//
// Records that were read but never acknowledged are allowed — a produce
// whose acknowledgement was lost (a timeout, a killed proxy) may still have
// committed — but they are counted, and each must still sit at a dense,
// unique offset.
package checker

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Record is one record as the producer sent it or a consumer read it.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
}

type partitionKey struct {
	topic     string
	partition int32
}

// Checker collects acknowledgements and reads. It is safe for concurrent
// use.
type Checker struct {
	mu sync.Mutex // guards the maps
	// acked by partition, then offset.
	acked map[partitionKey]map[int64]Record
	// read by partition, in the order consumed.
	read map[partitionKey][]Record
	// problems found while recording (duplicate acknowledgements).
	problems []string
}

// New returns an empty Checker.
func New() *Checker {
	return &Checker{acked: map[partitionKey]map[int64]Record{}, read: map[partitionKey][]Record{}}
}

// Acked records that the producer got an acknowledgement for r, with the
// partition and offset the server assigned.
func (c *Checker) Acked(r Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := partitionKey{r.Topic, r.Partition}
	m := c.acked[k]
	if m == nil {
		m = map[int64]Record{}
		c.acked[k] = m
	}
	if prev, dup := m[r.Offset]; dup {
		c.problems = append(c.problems, fmt.Sprintf("%s/%d offset %d acknowledged twice (values %q and %q)",
			r.Topic, r.Partition, r.Offset, short(prev.Value), short(r.Value)))
	}
	m[r.Offset] = r
}

// Read records that a consumer read r. Call it in the order the consumer
// returned records for each partition.
func (c *Checker) Read(r Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := partitionKey{r.Topic, r.Partition}
	c.read[k] = append(c.read[k], r)
}

// AckedCount returns how many acknowledgements were recorded.
func (c *Checker) AckedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.acked {
		n += len(m)
	}
	return n
}

// AckedRecords returns every acknowledged record, by topic, partition and
// offset: to check several consumers of the same records, each with a
// Checker of its own fed these.
func (c *Checker) AckedRecords() []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Record
	for _, m := range c.acked {
		for _, r := range m {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offset < b.Offset
	})
	return out
}

// Report is the result of Verify.
type Report struct {
	Acked, Read, ReadUnacked int
	// Problems lists every violation; empty means the run was clean.
	Problems []string
}

// OK reports whether no invariant was violated.
func (r Report) OK() bool { return len(r.Problems) == 0 }

func (r Report) String() string {
	s := fmt.Sprintf("acked %d, read %d (%d never acknowledged), %d problems", r.Acked, r.Read, r.ReadUnacked, len(r.Problems))
	const show = 20
	for i, p := range r.Problems {
		if i == show {
			s += fmt.Sprintf("\n  … and %d more", len(r.Problems)-show)
			break
		}
		s += "\n  " + p
	}
	return s
}

// Verify compares what was acknowledged with what was read. Each
// partition's reads must start at start (usually 0) and go on without a
// gap.
func (c *Checker) Verify(start int64) Report { return c.verify(start, false) }

// VerifySkipping is Verify for readers that skip offsets which hold no
// acknowledged record: transaction markers and aborted records, which a
// read_committed reader never sees. Reads must still rise, and every
// acknowledged record must be read once.
func (c *Checker) VerifySkipping(start int64) Report { return c.verify(start, true) }

func (c *Checker) verify(start int64, skipping bool) Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep := Report{Problems: append([]string(nil), c.problems...)}
	keys := map[partitionKey]bool{}
	for k := range c.acked {
		keys[k] = true
	}
	for k := range c.read {
		keys[k] = true
	}
	sorted := make([]partitionKey, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].topic != sorted[j].topic {
			return sorted[i].topic < sorted[j].topic
		}
		return sorted[i].partition < sorted[j].partition
	})
	for _, k := range sorted {
		acked, read := c.acked[k], c.read[k]
		rep.Acked += len(acked)
		rep.Read += len(read)
		name := fmt.Sprintf("%s/%d", k.topic, k.partition)
		seen := make(map[int64]bool, len(read))
		next := start
		for _, r := range read {
			switch {
			case seen[r.Offset]:
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s: offset %d read twice", name, r.Offset))
				continue
			case r.Offset != next && !(skipping && r.Offset > next):
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s: read offset %d, expected %d (gap or reorder)", name, r.Offset, next))
			}
			seen[r.Offset] = true
			next = r.Offset + 1
			a, ok := acked[r.Offset]
			if !ok {
				rep.ReadUnacked++
				continue
			}
			if !bytes.Equal(a.Value, r.Value) || !bytes.Equal(a.Key, r.Key) {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s: offset %d holds key %q value %q, acknowledged key %q value %q",
					name, r.Offset, short(r.Key), short(r.Value), short(a.Key), short(a.Value)))
			}
		}
		var lost []int64
		for off := range acked {
			if !seen[off] {
				lost = append(lost, off)
			}
		}
		if len(lost) > 0 {
			sort.Slice(lost, func(i, j int) bool { return lost[i] < lost[j] })
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %d acknowledged records never read, offsets %s", name, len(lost), ranges(lost)))
		}
	}
	return rep
}

func short(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "…"
	}
	return string(b)
}

// ranges prints sorted offsets compactly: "3-7, 9, 12-13".
func ranges(offs []int64) string {
	var parts []string
	for i := 0; i < len(offs); {
		j := i
		for j+1 < len(offs) && offs[j+1] == offs[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, fmt.Sprint(offs[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", offs[i], offs[j]))
		}
		if len(parts) == 10 {
			parts = append(parts, "…")
			break
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
