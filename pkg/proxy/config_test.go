package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/cache"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
)

func TestConfigValidate(t *testing.T) {
	fs, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ms := &meta.Store{} // never used: Validate only checks that it is set
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no meta", func(c *Config) { c.Meta = nil }, "Meta"},
		{"no store", func(c *Config) { c.Store = nil }, "Store"},
		{"bad listen address", func(c *Config) { c.ListenAddr = "7070" }, "listen address"},
		{"bad metrics address", func(c *Config) { c.MetricsAddr = "nope" }, "metrics address"},
		{"negative produce timeout", func(c *Config) { c.ProduceTimeout = -time.Second }, "durations"},
		{"negative fetch wait", func(c *Config) { c.MaxFetchWait = -1 }, "durations"},
		{"negative max fetch bytes", func(c *Config) { c.MaxFetchBytes = -1 }, "max fetch bytes"},
		{"max fetch bytes too large", func(c *Config) { c.MaxFetchBytes = 1 << 30 }, "max fetch bytes"},
		{"cache block above cache size", func(c *Config) { c.Cache = cache.Config{MaxBytes: 1 << 20, BlockSize: 2 << 20} }, "block size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Meta: ms, Store: fs}
			tc.mutate(&cfg)
			err := cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid config rejected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}
