package checker_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/strata-mq/strata/internal/checker"
)

func rec(p int32, off int64, v string) checker.Record {
	return checker.Record{Topic: "t", Partition: p, Offset: off, Key: []byte("k"), Value: []byte(v)}
}

// TestVerify feeds the checker clean and broken runs: each kind of
// violation must be reported, and a clean run must report none.
func TestVerify(t *testing.T) {
	tests := []struct {
		name        string
		acked, read []checker.Record
		want        string // substring of a problem; "" means clean
		unacked     int
	}{
		{"clean", []checker.Record{rec(0, 0, "a"), rec(0, 1, "b"), rec(1, 0, "c")},
			[]checker.Record{rec(0, 0, "a"), rec(0, 1, "b"), rec(1, 0, "c")}, "", 0},
		{"unacked read is allowed", []checker.Record{rec(0, 0, "a")},
			[]checker.Record{rec(0, 0, "a"), rec(0, 1, "timed-out")}, "", 1},
		{"lost record", []checker.Record{rec(0, 0, "a"), rec(0, 1, "b"), rec(0, 2, "c")},
			[]checker.Record{rec(0, 0, "a"), rec(0, 1, "b")}, "acknowledged records never read, offsets 2", 0},
		{"gap", []checker.Record{rec(0, 0, "a"), rec(0, 2, "c")},
			[]checker.Record{rec(0, 0, "a"), rec(0, 2, "c")}, "read offset 2, expected 1", 0},
		{"duplicate read", []checker.Record{rec(0, 0, "a")},
			[]checker.Record{rec(0, 0, "a"), rec(0, 0, "a")}, "offset 0 read twice", 0},
		{"reorder", []checker.Record{rec(0, 0, "a"), rec(0, 1, "b")},
			[]checker.Record{rec(0, 1, "b"), rec(0, 0, "a")}, "read offset 1, expected 0", 0},
		{"wrong value", []checker.Record{rec(0, 0, "a")},
			[]checker.Record{rec(0, 0, "z")}, `value "z", acknowledged key "k" value "a"`, 0},
		{"offset acked twice", []checker.Record{rec(0, 0, "a"), rec(0, 0, "b")},
			[]checker.Record{rec(0, 0, "b")}, "acknowledged twice", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := checker.New()
			for _, r := range tt.acked {
				c.Acked(r)
			}
			for _, r := range tt.read {
				c.Read(r)
			}
			rep := c.Verify(0)
			if tt.want == "" {
				if !rep.OK() {
					t.Fatalf("clean run reported: %v", rep)
				}
			} else if !strings.Contains(rep.String(), tt.want) {
				t.Fatalf("report %v lacks %q", rep, tt.want)
			}
			if rep.ReadUnacked != tt.unacked {
				t.Fatalf("unacked %d, want %d", rep.ReadUnacked, tt.unacked)
			}
		})
	}
}

func TestLostRangesCompact(t *testing.T) {
	c := checker.New()
	for i := int64(0); i < 100; i++ {
		c.Acked(rec(0, i, fmt.Sprint(i)))
	}
	for i := int64(0); i < 50; i++ {
		c.Read(rec(0, i, fmt.Sprint(i)))
	}
	rep := c.Verify(0)
	if !strings.Contains(rep.String(), "50 acknowledged records never read, offsets 50-99") {
		t.Fatalf("report: %v", rep)
	}
}

// TestAckedRecords: the acknowledged records come back in topic,
// partition and offset order, and a second Checker fed them verifies a
// consumer of its own.
func TestAckedRecords(t *testing.T) {
	c := checker.New()
	for _, r := range []checker.Record{{Topic: "b", Partition: 0, Offset: 0}, {Topic: "a", Partition: 1, Offset: 1}, {Topic: "a", Partition: 1, Offset: 0}, {Topic: "a", Partition: 0, Offset: 0}} {
		c.Acked(r)
	}
	got := c.AckedRecords()
	want := []checker.Record{{Topic: "a", Partition: 0, Offset: 0}, {Topic: "a", Partition: 1, Offset: 0}, {Topic: "a", Partition: 1, Offset: 1}, {Topic: "b", Partition: 0, Offset: 0}}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Topic != want[i].Topic || got[i].Partition != want[i].Partition || got[i].Offset != want[i].Offset {
			t.Fatalf("record %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	other := checker.New()
	for _, r := range got {
		other.Acked(r)
	}
	for _, r := range got[:3] {
		other.Read(r)
	}
	if rep := other.Verify(0); rep.OK() {
		t.Fatal("a consumer that missed b/0 verified clean")
	}
	other.Read(got[3])
	if rep := other.Verify(0); !rep.OK() {
		t.Fatal(rep)
	}
}

// TestVerifySkipping: a read_committed reader skips offsets that hold no
// acknowledged record (transaction markers, aborted records); VerifySkipping
// accepts such gaps, which Verify reports, and still reports a record read
// twice, reads out of order and an acknowledged record skipped.
func TestVerifySkipping(t *testing.T) {
	rec := func(off int64) checker.Record {
		return checker.Record{Topic: "t", Partition: 0, Offset: off, Value: []byte(fmt.Sprint(off))}
	}
	c := checker.New()
	for _, off := range []int64{0, 1, 5, 6} { // 2 is a marker, 3-4 aborted
		c.Acked(rec(off))
		c.Read(rec(off))
	}
	if rep := c.VerifySkipping(0); !rep.OK() {
		t.Fatalf("gaps over unacknowledged offsets: %v", rep)
	}
	if rep := c.Verify(0); rep.OK() {
		t.Fatal("Verify accepted a gap")
	}
	c.Read(rec(6))
	c.Acked(rec(9))
	c.Read(rec(1))
	rep := c.VerifySkipping(0)
	if len(rep.Problems) != 3 {
		t.Fatalf("want a double read, a reorder and a lost record, got %v", rep)
	}
}
