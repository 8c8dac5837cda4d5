package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/objstore/objstoretest"
)

// One MinIO process serves every test in the package (testenv.SharedMinIO);
// each test works in buckets of its own. It starts on first use, so that
// FS-only runs do not pay for it.
var bucketSeq atomic.Int64

func TestMain(m *testing.M) { testenv.Main(m, nil) }

// newBucket creates an empty bucket for the test.
func newBucket(t testing.TB, m *testenv.MinIO) string {
	t.Helper()
	name := fmt.Sprintf("objstore-test-%d", bucketSeq.Add(1))
	if err := m.CreateBucket(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

// s3Config returns a configuration for bucket on the endpoint (MinIO or a
// proxy in front of it), with short retry delays.
func s3Config(endpoint, bucket string) objstore.S3Config {
	return objstore.S3Config{
		Endpoint:        endpoint,
		Region:          testenv.MinIORegion,
		Bucket:          bucket,
		PathStyle:       true,
		AccessKeyID:     testenv.MinIOAccessKey,
		SecretAccessKey: testenv.MinIOSecretKey,
		RetryBaseDelay:  time.Millisecond,
		RetryMaxDelay:   10 * time.Millisecond,
	}
}

func newS3(t testing.TB, cfg objstore.S3Config) *objstore.S3 {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := objstore.NewS3(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestS3Conformance(t *testing.T) {
	m := testenv.SharedMinIO(t)
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		cfg := s3Config(m.Endpoint, newBucket(t, m))
		cfg.Prefix = "cluster-a/"
		return newS3(t, cfg)
	})
}

// TestS3Prefix pins that Prefix places a store's keys under it in the
// bucket and hides them from stores with another prefix.
func TestS3Prefix(t *testing.T) {
	m := testenv.SharedMinIO(t)
	bucket := newBucket(t, m)
	ctx := t.Context()
	root := newS3(t, s3Config(m.Endpoint, bucket))
	stores := map[string]*objstore.S3{}
	for _, p := range []string{"a/", "b/"} {
		cfg := s3Config(m.Endpoint, bucket)
		cfg.Prefix = p
		stores[p] = newS3(t, cfg)
		if err := stores[p].Put(ctx, "k", []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	for p, s := range stores {
		if got, err := s.Get(ctx, "k", 0, -1); err != nil || string(got) != p {
			t.Errorf("store %q: Get(k) = %q, %v", p, got, err)
		}
		if got := listKeys(t, s, ""); !slices.Equal(got, []string{"k"}) {
			t.Errorf("store %q: List = %q, want [k]", p, got)
		}
	}
	if got := listKeys(t, root, ""); !slices.Equal(got, []string{"a/k", "b/k"}) {
		t.Errorf("root store: List = %q, want [a/k b/k]", got)
	}

	// The longest prefix and the longest key fit S3's 1,024 bytes together.
	cfg := s3Config(m.Endpoint, bucket)
	cfg.Prefix = strings.Repeat("p", objstore.MaxPrefixLen-1) + "/"
	long := newS3(t, cfg)
	key := strings.Repeat("k/", objstore.MaxKeyLen/2-1) + "kk"
	if err := long.Put(ctx, key, []byte("long")); err != nil {
		t.Fatalf("Put of a %d-byte key under a %d-byte prefix: %v", len(key), len(cfg.Prefix), err)
	}
	if got := listKeys(t, long, "k/"); !slices.Equal(got, []string{key}) {
		t.Errorf("List under the long prefix = %d keys, want the long key", len(got))
	}
}

func TestS3ConfigValidate(t *testing.T) {
	good := objstore.S3Config{Bucket: "strata-data"}
	tests := []struct {
		name    string
		mod     func(*objstore.S3Config)
		wantErr string
	}{
		{"minimal", func(*objstore.S3Config) {}, ""},
		{"full", func(c *objstore.S3Config) {
			*c = s3Config("https://s3.example.com:9000", "b.c-d")
			c.Prefix = "cluster-1/"
			c.MaxAttempts, c.RequestTimeout = 1, time.Second
		}, ""},
		{"no bucket", func(c *objstore.S3Config) { c.Bucket = "" }, "Bucket is required"},
		{"bucket upper case", func(c *objstore.S3Config) { c.Bucket = "Strata" }, "bucket name"},
		{"bucket too short", func(c *objstore.S3Config) { c.Bucket = "ab" }, "bucket name"},
		{"bucket ends in dash", func(c *objstore.S3Config) { c.Bucket = "abc-" }, "bucket name"},
		{"endpoint without scheme", func(c *objstore.S3Config) { c.Endpoint = "127.0.0.1:9000" }, "endpoint"},
		{"endpoint ftp", func(c *objstore.S3Config) { c.Endpoint = "ftp://host" }, "endpoint"},
		{"prefix absolute", func(c *objstore.S3Config) { c.Prefix = "/x/" }, "prefix"},
		{"prefix dotdot", func(c *objstore.S3Config) { c.Prefix = "../" }, "prefix"},
		{"prefix too long", func(c *objstore.S3Config) { c.Prefix = strings.Repeat("p", objstore.MaxPrefixLen+1) }, "prefix"},
		{"access key only", func(c *objstore.S3Config) { c.AccessKeyID = "k" }, "both"},
		{"secret only", func(c *objstore.S3Config) { c.SecretAccessKey = "s" }, "both"},
		{"negative attempts", func(c *objstore.S3Config) { c.MaxAttempts = -1 }, "MaxAttempts"},
		{"negative timeout", func(c *objstore.S3Config) { c.RequestTimeout = -time.Second }, "RequestTimeout"},
		{"base above max", func(c *objstore.S3Config) { c.RetryBaseDelay = time.Minute }, "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mod(&cfg)
			err := cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate error = %v, want one mentioning %q", err, tc.wantErr)
			}
			if _, err := objstore.NewS3(t.Context(), cfg); err == nil {
				t.Fatal("NewS3 accepted a config that Validate rejects")
			}
		})
	}
}

// faultProxy is an HTTP reverse proxy in front of MinIO that lets a test
// fail, stall or cut short chosen requests. It keeps the client's Host
// header, which SigV4 signs.
type faultProxy struct {
	*httptest.Server
	requests atomic.Int64 // requests received, faulted or not
	// arrived receives the number of each request as it arrives, if the
	// test reads it.
	arrived chan int64
	// release ends every stalled request.
	release chan struct{}
}

// newFaultProxy starts a proxy to target. fault is called for each request
// with its 1-based number and reports whether it answered the request
// itself; if not, the request goes to target.
func newFaultProxy(t *testing.T, target string, fault func(p *faultProxy, n int64, w http.ResponseWriter, r *http.Request) bool) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host
	}}
	p := &faultProxy{arrived: make(chan int64, 100), release: make(chan struct{})}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := p.requests.Add(1)
		select {
		case p.arrived <- n:
		default:
		}
		if fault(p, n, w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		close(p.release)
		p.Close()
	})
	return p
}

// stall holds a request without answering until the client gives up or the
// test ends.
func (p *faultProxy) stall(r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body) // the server notices a closed connection only after the body
	select {
	case <-r.Context().Done():
	case <-p.release:
	}
}

func s3Error(status int, code string) func(p *faultProxy, w http.ResponseWriter, r *http.Request) {
	return func(p *faultProxy, w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+
				`<Error><Code>%s</Code><Message>injected by the test proxy</Message><RequestId>fault</RequestId></Error>`, code)
		}
	}
}

// TestS3RetriesServerErrors pins that throttling and 5xx answers are
// retried up to MaxAttempts and no further, for writes and reads.
func TestS3RetriesServerErrors(t *testing.T) {
	m := testenv.SharedMinIO(t)
	bucket := newBucket(t, m)
	direct := newS3(t, s3Config(m.Endpoint, bucket))
	if err := direct.Put(t.Context(), "existing", []byte("payload")); err != nil {
		t.Fatal(err)
	}
	big := []byte(strings.Repeat("retried body ", 5000))
	ops := map[string]func(ctx context.Context, s objstore.Store) error{
		"put": func(ctx context.Context, s objstore.Store) error {
			if err := direct.Delete(ctx, "new"); err != nil {
				return err
			}
			if err := s.Put(ctx, "new", big); err != nil {
				return err
			}
			// The retried attempt sent the whole body again.
			if got, err := direct.Get(ctx, "new", 0, -1); err != nil || string(got) != string(big) {
				return fmt.Errorf("after Put, Get = %d bytes, %v; want %d bytes", len(got), err, len(big))
			}
			return nil
		},
		"get": func(ctx context.Context, s objstore.Store) error {
			b, err := s.Get(ctx, "existing", 1, 3)
			if err == nil && string(b) != "ayl" {
				err = fmt.Errorf("Get = %q, want %q", b, "ayl")
			}
			return err
		},
	}
	tests := []struct {
		name        string
		status      int
		code        string
		failFirst   int64
		maxAttempts int
		wantErr     bool
	}{
		{"slowdown recovers", http.StatusServiceUnavailable, "SlowDown", 2, 3, false},
		{"slowdown gives up", http.StatusServiceUnavailable, "SlowDown", 5, 3, true},
		{"internal error recovers", http.StatusInternalServerError, "InternalError", 1, 3, false},
		{"no retries", http.StatusServiceUnavailable, "SlowDown", 1, 1, true},
	}
	for _, tc := range tests {
		for opName, op := range ops {
			t.Run(tc.name+"/"+opName, func(t *testing.T) {
				fail := s3Error(tc.status, tc.code)
				p := newFaultProxy(t, m.Endpoint, func(p *faultProxy, n int64, w http.ResponseWriter, r *http.Request) bool {
					if n <= tc.failFirst {
						fail(p, w, r)
						return true
					}
					return false
				})
				cfg := s3Config(p.URL, bucket)
				cfg.MaxAttempts = tc.maxAttempts
				err := op(t.Context(), newS3(t, cfg))
				wantRequests := min(tc.failFirst+1, int64(tc.maxAttempts))
				if got := p.requests.Load(); got != wantRequests {
					t.Errorf("proxy saw %d requests, want %d", got, wantRequests)
				}
				if !tc.wantErr {
					if err != nil {
						t.Fatalf("error after %d injected failures: %v", tc.failFirst, err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.code) {
					t.Fatalf("error = %v, want one naming %s", err, tc.code)
				}
				if errors.Is(err, objstore.ErrNotFound) || errors.Is(err, objstore.ErrInvalidRange) {
					t.Fatalf("error %v wrongly matches a sentinel", err)
				}
				t.Logf("error after %d attempts: %v", tc.maxAttempts, err)
			})
		}
	}
}

// TestS3AttemptTimeout pins that RequestTimeout bounds each attempt: a
// server that stalls before answering, or in the middle of a body, costs
// one timeout per attempt, and the operation's total time stays bounded.
func TestS3AttemptTimeout(t *testing.T) {
	m := testenv.SharedMinIO(t)
	bucket := newBucket(t, m)
	direct := newS3(t, s3Config(m.Endpoint, bucket))
	payload := []byte(strings.Repeat("0123456789", 1000))
	if err := direct.Put(t.Context(), "obj", payload); err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	stallHeaders := func(p *faultProxy, w http.ResponseWriter, r *http.Request) { p.stall(r) }
	stallBody := func(p *faultProxy, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(payload[:100])
		w.(http.Flusher).Flush()
		p.stall(r)
	}
	cutBody := func(p *faultProxy, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(payload[:100])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // closes the connection mid-body
	}
	tests := []struct {
		name      string
		fault     func(p *faultProxy, w http.ResponseWriter, r *http.Request)
		faultyN   int64 // how many requests get the fault
		wantErr   bool
		wantTotal int64 // requests the proxy sees
	}{
		{"stalled headers then ok", stallHeaders, 1, false, 2},
		{"stalled body then ok", stallBody, 2, false, 3},
		{"cut body then ok", cutBody, 1, false, 2},
		{"always stalled", stallHeaders, 1 << 30, true, 3},
		{"body always stalled", stallBody, 1 << 30, true, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newFaultProxy(t, m.Endpoint, func(p *faultProxy, n int64, w http.ResponseWriter, r *http.Request) bool {
				if n <= tc.faultyN {
					tc.fault(p, w, r)
					return true
				}
				return false
			})
			cfg := s3Config(p.URL, bucket)
			cfg.MaxAttempts = 3
			cfg.RequestTimeout = timeout
			s := newS3(t, cfg)
			start := time.Now()
			got, err := s.Get(t.Context(), "obj", 0, -1)
			elapsed := time.Since(start)
			if n := p.requests.Load(); n != tc.wantTotal {
				t.Errorf("proxy saw %d requests, want %d", n, tc.wantTotal)
			}
			// Three attempts of at most one timeout each, short backoffs,
			// and generous slack for a loaded machine.
			if limit := 3*timeout + 5*time.Second; elapsed > limit {
				t.Errorf("Get took %v, want under %v", elapsed, limit)
			}
			if tc.wantErr {
				var te interface{ Timeout() bool }
				if err == nil || !errors.As(err, &te) || !te.Timeout() {
					t.Fatalf("error = %v, want a timeout", err)
				}
				t.Logf("error after %v: %v", elapsed, err)
				return
			}
			if err != nil || string(got) != string(payload) {
				t.Fatalf("Get = %d bytes, %v; want the %d-byte object", len(got), err, len(payload))
			}
		})
	}
}

// TestS3CancelDuringAttempt pins that canceling the context ends an
// operation at once, even while an attempt waits on a stalled server with a
// long RequestTimeout.
func TestS3CancelDuringAttempt(t *testing.T) {
	m := testenv.SharedMinIO(t)
	bucket := newBucket(t, m)
	p := newFaultProxy(t, m.Endpoint, func(p *faultProxy, n int64, w http.ResponseWriter, r *http.Request) bool {
		p.stall(r)
		return true
	})
	cfg := s3Config(p.URL, bucket)
	cfg.RequestTimeout = time.Hour
	cfg.MaxAttempts = 10
	s := newS3(t, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := s.Get(ctx, "obj", 0, -1)
		done <- err
	}()
	<-p.arrived // the first attempt is at the server
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Get did not return after its context was canceled")
	}
	if n := p.requests.Load(); n != 1 {
		t.Fatalf("proxy saw %d requests, want 1: a canceled operation must not retry", n)
	}
}

// TestS3ServerIgnoresRange pins that Get still returns only the requested
// bytes from a server that answers a ranged GET with the whole object.
func TestS3ServerIgnoresRange(t *testing.T) {
	m := testenv.SharedMinIO(t)
	const data = "0123456789"
	p := newFaultProxy(t, m.Endpoint, func(p *faultProxy, n int64, w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.Header.Get("Range") == "" {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		io.WriteString(w, data)
		return true
	})
	s := newS3(t, s3Config(p.URL, newBucket(t, m)))
	for _, tc := range []struct {
		off, length int64
		want        string
	}{{2, 3, "234"}, {8, -1, "89"}, {8, 100, "89"}, {10, -1, ""}} {
		if got, err := s.Get(t.Context(), "k", tc.off, tc.length); err != nil || string(got) != tc.want {
			t.Errorf("Get(%d, %d) = %q, %v; want %q", tc.off, tc.length, got, err, tc.want)
		}
	}
	if _, err := s.Get(t.Context(), "k", 11, -1); !errors.Is(err, objstore.ErrInvalidRange) {
		t.Errorf("Get(11, -1) error = %v, want ErrInvalidRange", err)
	}
}

// TestS3MissingBucket pins that a missing bucket is an error of its own, not
// ErrNotFound: a Get from it must not look like a deleted object.
func TestS3MissingBucket(t *testing.T) {
	m := testenv.SharedMinIO(t)
	s := newS3(t, s3Config(m.Endpoint, "no-such-bucket"))
	_, err := s.Get(t.Context(), "k", 0, -1)
	if err == nil || errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get from a missing bucket: error = %v, want a non-NotFound error", err)
	}
	if err := s.Put(t.Context(), "k", []byte("x")); err == nil || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Fatalf("Put to a missing bucket: error = %v, want NoSuchBucket", err)
	}
}

// TestS3ConnectionRefused pins that an unreachable endpoint fails after
// MaxAttempts with a clear error.
func TestS3ConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := s3Config("http://"+addr, "bucket")
	cfg.MaxAttempts = 2
	err = newS3(t, cfg).Put(t.Context(), "k", []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("error = %v, want connection refused", err)
	}
}

func listKeys(t *testing.T, s objstore.Store, prefix string) []string {
	t.Helper()
	var out []string
	for info, err := range s.List(t.Context(), prefix) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, info.Key)
	}
	return out
}

// TestS3PutCorruptionDetected pins that a PUT payload damaged on its way
// is refused by the server: payloads go unsigned (no SigV4 SHA-256), so
// the CRC-32C checksum header is what protects them.
func TestS3PutCorruptionDetected(t *testing.T) {
	m := testenv.SharedMinIO(t)
	bucket := newBucket(t, m)
	p := newFaultProxy(t, m.Endpoint, func(_ *faultProxy, _ int64, _ http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut {
			body, _ := io.ReadAll(r.Body)
			body[len(body)/2] ^= 0xff
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		return false
	})
	cfg := s3Config(p.URL, bucket)
	cfg.MaxAttempts = 1
	if err := newS3(t, cfg).Put(t.Context(), "damaged", []byte(strings.Repeat("payload ", 1000))); err == nil {
		t.Fatal("Put of a payload damaged in flight succeeded")
	}
	direct := newS3(t, s3Config(m.Endpoint, bucket))
	if _, err := direct.Get(t.Context(), "damaged", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get after the refused Put: %v, want ErrNotFound", err)
	}
}

// TestS3DeleteManyWithoutBatchDeletes: against a service that answers
// DeleteObjects NotImplemented (Google Cloud Storage's S3 interface),
// DeleteMany deletes every key one request at a time, and does not try a
// batch again.
func TestS3DeleteManyWithoutBatchDeletes(t *testing.T) {
	m := testenv.SharedMinIO(t)
	bucket := newBucket(t, m)
	var batches atomic.Int64
	p := newFaultProxy(t, m.Endpoint, func(p *faultProxy, _ int64, w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || !r.URL.Query().Has("delete") {
			return false
		}
		batches.Add(1)
		s3Error(http.StatusNotImplemented, "NotImplemented")(p, w, r)
		return true
	})
	s := newS3(t, s3Config(p.URL, bucket))
	for _, round := range []string{"a", "b"} {
		keys := []string{round + "/1", round + "/2", round + "/3"}
		for _, k := range keys {
			if err := s.Put(t.Context(), k, []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		if err := errors.Join(s.DeleteMany(t.Context(), keys)...); err != nil {
			t.Fatalf("round %s: %v", round, err)
		}
		for _, k := range keys {
			if _, err := s.Get(t.Context(), k, 0, -1); !errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("round %s: %s after DeleteMany: %v", round, k, err)
			}
		}
	}
	if n := batches.Load(); n != 1 {
		t.Fatalf("%d batch deletes tried, want 1 (then one key at a time)", n)
	}
}

// BenchmarkS3Deletes deletes 1,000 objects from MinIO one request each,
// one at a time and 8 at a time (as garbage collection did), and with
// DeleteMany (one DeleteObjects request); it reports objects deleted per
// second.
func BenchmarkS3Deletes(b *testing.B) {
	m := testenv.SharedMinIO(b)
	cfg := s3Config(m.Endpoint, newBucket(b, m))
	cfg.Logger = slog.New(slog.DiscardHandler)
	s := newS3(b, cfg)
	const n = 1000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench/%04d", i)
	}
	deleteEach := func(workers int) func([]string) error {
		return func(keys []string) error {
			var g errgroup.Group
			g.SetLimit(workers)
			for _, k := range keys {
				g.Go(func() error { return s.Delete(b.Context(), k) })
			}
			return g.Wait()
		}
	}
	for _, bc := range []struct {
		name string
		del  func([]string) error
	}{
		{"one-at-a-time", deleteEach(1)},
		{"8-in-flight", deleteEach(8)},
		{"DeleteMany", func(keys []string) error { return errors.Join(s.DeleteMany(b.Context(), keys)...) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var took time.Duration
			for b.Loop() {
				b.StopTimer()
				var g errgroup.Group
				g.SetLimit(16)
				for _, k := range keys {
					g.Go(func() error { return s.Put(b.Context(), k, []byte(k)) })
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if err := bc.del(keys); err != nil {
					b.Fatal(err)
				}
				took += time.Since(start)
			}
			b.ReportMetric(float64(b.N*n)/took.Seconds(), "deletes/s")
		})
	}
}
