package client

import (
	"fmt"
	"testing"
)

// TestMurmur2 pins the hash to Kafka's Utils.murmur2 test vectors, so keys
// land on the same partitions as with Kafka's Java client.
func TestMurmur2(t *testing.T) {
	tests := []struct {
		key  string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	}
	for _, tt := range tests {
		if got := murmur2([]byte(tt.key)); got != tt.want {
			t.Errorf("murmur2(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

func TestKeyPartitionDeterministic(t *testing.T) {
	tests := []struct {
		key  string
		n    int32
		want int32
	}{
		{"21", 1, 0},
		{"foobar", 7, (-790332482 & 0x7fffffff) % 7},
		{"abc", 3, 479470107 % 3},
		{"", 5, (murmur2(nil) & 0x7fffffff) % 5},
	}
	for _, tt := range tests {
		for range 3 {
			if got := keyPartition([]byte(tt.key), tt.n); got != tt.want {
				t.Fatalf("keyPartition(%q, %d) = %d, want %d", tt.key, tt.n, got, tt.want)
			}
		}
	}
}

func TestKeyPartitionDistribution(t *testing.T) {
	const n, keys = 8, 16000
	counts := make([]int, n)
	for i := range keys {
		p := keyPartition(fmt.Appendf(nil, "key-%d", i), n)
		if p < 0 || p >= n {
			t.Fatalf("partition %d out of range", p)
		}
		counts[p]++
	}
	for p, c := range counts {
		if c < keys/n*8/10 || c > keys/n*12/10 {
			t.Errorf("partition %d got %d of %d keys, want within 20%% of %d", p, c, keys, keys/n)
		}
	}
}

func TestRoundRobin(t *testing.T) {
	var rr roundRobin
	for i := range 10 {
		if got := rr.partition(3); got != int32(i%3) {
			t.Fatalf("record %d: partition %d, want %d", i, got, i%3)
		}
	}
}
