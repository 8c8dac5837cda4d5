package flagenv_test

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/flagenv"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		addr    string
		wait    time.Duration
		wantErr bool
	}{
		{"defaults", nil, nil, "127.0.0.1:1", time.Second, false},
		{"env", nil, map[string]string{"STRATA_LISTEN_ADDR": "0.0.0.0:2", "STRATA_MAX_WAIT": "3s"}, "0.0.0.0:2", 3 * time.Second, false},
		{"flag beats env", []string{"-listen-addr", "h:3"}, map[string]string{"STRATA_LISTEN_ADDR": "0.0.0.0:2"}, "h:3", time.Second, false},
		{"bad env value", nil, map[string]string{"STRATA_MAX_WAIT": "soon"}, "", 0, true},
		{"bad flag", []string{"-nope"}, nil, "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			addr := fs.String("listen-addr", "127.0.0.1:1", "address")
			wait := fs.Duration("max-wait", time.Second, "wait")
			err := flagenv.Parse(fs, tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (*addr != tt.addr || *wait != tt.wait) {
				t.Fatalf("got %q %v, want %q %v", *addr, *wait, tt.addr, tt.wait)
			}
		})
	}
}
