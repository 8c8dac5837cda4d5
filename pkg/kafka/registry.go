package kafka

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handler serves one request of an API. It returns the response to write,
// or nil to write none (a produce with acks=0). An error means the request
// broke the protocol: the connection is closed without a response. Errors
// of the request's content are answered in the response's error codes.
//
// Each API lives in its own file and registers its handler from init:
//
//	func init() { register(kmsg.Metadata, 0, 12, (*Server).handleMetadata) }
//
//	func (s *Server) handleMetadata(ctx context.Context, r *request) (kmsg.Response, error) {
//		req := r.kreq.(*kmsg.MetadataRequest)
//		resp := req.ResponseKind().(*kmsg.MetadataResponse)
//		...
//	}
type handler func(s *Server, ctx context.Context, r *request) (kmsg.Response, error)

// api is one registered API: the versions it serves and advertises.
type api struct {
	key kmsg.Key
	// min and max are the versions served.
	min, max int16
	// advertisedMin is the lowest version ApiVersions advertises; below
	// min for an API whose old versions are refused with an error rather
	// than hidden (Produce: Kafka 4.0 advertises v0 and refuses v0–2, so
	// that old clients get an error instead of no connection).
	advertisedMin int16
	handle        handler
}

var (
	registryMu sync.Mutex
	registry   = map[kmsg.Key]api{}
)

// register adds an API serving versions min..max, advertised from min.
// It panics on a key registered twice or a range kmsg does not know, so
// that a mistake fails every test at once.
func register(key kmsg.Key, min, max int16, h handler) {
	registerAPI(api{key: key, min: min, max: max, advertisedMin: min, handle: h})
}

func registerAPI(a api) {
	registryMu.Lock()
	defer registryMu.Unlock()
	req := kmsg.RequestForKey(int16(a.key))
	switch {
	case req == nil:
		panic(fmt.Sprintf("kafka: register: kmsg does not know key %d", a.key))
	case a.advertisedMin < 0 || a.advertisedMin > a.min || a.min > a.max || a.max > req.MaxVersion():
		panic(fmt.Sprintf("kafka: register %s: versions %d (advertised %d)..%d outside 0..%d", a.key.Name(), a.min, a.advertisedMin, a.max, req.MaxVersion()))
	case a.handle == nil:
		panic(fmt.Sprintf("kafka: register %s: no handler", a.key.Name()))
	}
	if _, dup := registry[a.key]; dup {
		panic(fmt.Sprintf("kafka: register: %s registered twice", a.key.Name()))
	}
	registry[a.key] = a
}

// lookupAPI returns the registered API of key.
func lookupAPI(key int16) (api, bool) {
	registryMu.Lock()
	defer registryMu.Unlock()
	a, ok := registry[kmsg.Key(key)]
	return a, ok
}

// advertised returns every registered API with its advertised versions,
// sorted by key: the body of ApiVersions.
func advertised() []kmsg.ApiVersionsResponseApiKey {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(registry))
	for _, a := range registry {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = int16(a.key), a.advertisedMin, a.max
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ApiKey < out[j].ApiKey })
	return out
}
