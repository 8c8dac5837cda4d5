package kafka_test

import (
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/kafka"
)

// TestConfigValidate refuses bad settings with an error naming the
// setting, and takes the zero Config with an address.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  kafka.Config
		want string // in the error; empty: valid
	}{
		{"defaults", kafka.Config{Addr: "127.0.0.1:0"}, ""},
		{"no address", kafka.Config{}, "no listen address"},
		{"bad address", kafka.Config{Addr: "nowhere"}, "listen address"},
		{"negative node id", kafka.Config{Addr: "127.0.0.1:0", NodeID: -1}, "node id"},
		{"negative idle timeout", kafka.Config{Addr: "127.0.0.1:0", IdleTimeout: -time.Second}, "durations"},
		{"session too short", kafka.Config{Addr: "127.0.0.1:0", ConsumerSessionTimeout: 500 * time.Millisecond}, "consumer session timeout 500ms"},
		{"session too long", kafka.Config{Addr: "127.0.0.1:0", ConsumerSessionTimeout: time.Hour}, "consumer session timeout 1h0m0s"},
		{"session in range", kafka.Config{Addr: "127.0.0.1:0", ConsumerSessionTimeout: 2 * time.Minute}, ""},
		{"request limit too small", kafka.Config{Addr: "127.0.0.1:0", MaxRequestBytes: 5}, "max request bytes 5"},
		{"request limit negative", kafka.Config{Addr: "127.0.0.1:0", MaxRequestBytes: -1}, "max request bytes -1"},
		{"request limit set", kafka.Config{Addr: "127.0.0.1:0", MaxRequestBytes: 8 << 20}, ""},
		{"queued below the request limit", kafka.Config{Addr: "127.0.0.1:0", MaxQueuedRequestBytes: 1 << 20}, "max queued request bytes 1048576 is below max request bytes 104857600"},
		{"queued negative", kafka.Config{Addr: "127.0.0.1:0", MaxQueuedRequestBytes: -1}, "max queued request bytes -1"},
		{"queued follows a larger request limit", kafka.Config{Addr: "127.0.0.1:0", MaxRequestBytes: 512 << 20}, ""},
		{"control request limit too small", kafka.Config{Addr: "127.0.0.1:0", MaxControlRequestBytes: 5}, "max control request bytes 5"},
		{"auto-create partitions negative", kafka.Config{Addr: "127.0.0.1:0", AutoCreatePartitions: -1}, "auto-created topics' partitions -1"},
		{"auto-create partitions", kafka.Config{Addr: "127.0.0.1:0", AutoCreateTopics: true, AutoCreatePartitions: 6}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}
